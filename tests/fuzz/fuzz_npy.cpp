// libFuzzer target for the .npy reader (io/npy.hpp, parse_npy: the same header grammar and size checks as
// read_npy): any bytes either parse into an array whose data is exactly what its dtype and shape need, or
// throw diffuse::error. Conversions of an accepted array: to double always succeeds; to float, int32,
// int64, uint8 either succeed or throw diffuse::error (never undefined behaviour: UBSan is on in the fuzz
// build). A crash, a sanitizer report or a trap is a bug.
// Built with -DDIFFUSE_FUZZ_REPLAY it is the CTest program fuzz_npy_replay (tests/fuzz/replay.hpp).
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "diffuse/io/npy.hpp"

namespace {
template <class T>
void convert_or_refuse(const diffuse::io::npy_array& a) {
    try {
        if (a.as<T>().size() != a.size()) __builtin_trap();
    } catch (const diffuse::error&) {
    }
}

// true when the input is a valid .npy file.
bool parse_and_convert(const std::uint8_t* data, std::size_t size) {
    diffuse::io::npy_array a;
    try {
        a = diffuse::io::parse_npy(std::span<const unsigned char>(data, size));
    } catch (const diffuse::error&) {
        return false;
    }
    const std::size_t element = diffuse::io::detail::npy_dtype_size(a.dtype);
    if (element == 0 || a.bytes.size() > size || a.bytes.size() != a.size() * element) __builtin_trap();
    try {
        if (a.as<double>().size() != a.size()) __builtin_trap();
    } catch (const diffuse::error&) {
        __builtin_trap();  // every supported dtype converts to double
    }
    convert_or_refuse<float>(a);
    convert_or_refuse<std::int32_t>(a);
    convert_or_refuse<std::int64_t>(a);
    convert_or_refuse<std::uint8_t>(a);
    return true;
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
