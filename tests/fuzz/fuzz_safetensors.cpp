// libFuzzer target for the safetensors reader: any input either parses into a file whose every entry
// lies inside the input and converts without leaving it (every float dtype to double; to float all but
// F64 values beyond float's range, which are refused), or throws diffuse::error. A crash, a sanitizer
// report or a trap is a bug.
//
// Built with -DDIFFUSE_FUZZ_REPLAY it is instead a plain program (fuzz_safetensors_replay, run by
// CTest) that feeds every file of the folders or files on its command line to the same target. Files
// named ok_* must parse and bad_* must be rejected; other names (new crash reproducers) need only not
// crash.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "diffuse/io/safetensors.hpp"

namespace {
bool is_float(const diffuse::io::safetensors_entry& e) {
    return e.dtype == "F32" || e.dtype == "F64" || e.dtype == "F16" || e.dtype == "BF16";
}

// true when the input parses; traps when the parsed file breaks its own guarantees.
bool parse_and_convert(const std::uint8_t* data, std::size_t size) {
    try {
        const auto st = diffuse::io::parse_safetensors(std::span<const unsigned char>(data, size));
        std::vector<float> f;
        std::vector<double> d;
        for (const auto& e : st.entries()) {
            if (e.begin > e.end || e.end > size) __builtin_trap();
            // numel × dtype size = the tensor's bytes <= size, so these allocations are bounded by the input
            f.resize(std::size_t(e.numel()));
            d.resize(std::size_t(e.numel()));
            try {
                st.read_into(e, std::span<double>(d));
            } catch (const diffuse::error&) {
                if (is_float(e)) __builtin_trap();  // only non-float dtypes may refuse conversion to double
            }
            try {
                st.read_into(e, std::span<float>(f));
            } catch (const diffuse::error&) {
                // refused: a non-float dtype, or an F64 value beyond float's range
                if (is_float(e) && e.dtype != "F64") __builtin_trap();
            }
        }
        return true;
    } catch (const diffuse::error&) {
        return false;
    }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    (void)parse_and_convert(data, size);
    return 0;
}

#ifdef DIFFUSE_FUZZ_REPLAY
#include "replay.hpp"
int main(int argc, char** argv) { return diffuse_fuzz::replay_main(argc, argv, parse_and_convert); }
#endif
