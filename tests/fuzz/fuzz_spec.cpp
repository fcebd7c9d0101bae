// libFuzzer target for the CLI's spec runner (tools/diffuse/runner.hpp, docs/cli.md): any bytes either run as
// a sampling spec or are refused with a spec_error or diffuse::error — never a crash, a sanitizer report, an
// exhausted memory or a hang. The run's limits are small (16 MiB of memory, 10^6 model evaluations × values,
// spec_limits.hpp), so no input can ask for more; the files a spec names resolve inside a folder that does
// not exist (spec_files.hpp), and the trajectory is kept in memory, so nothing is written. A finished run
// must return the shape its spec asked for, with finite or non-finite values but the right count.
// Built with -DDIFFUSE_FUZZ_REPLAY it is the CTest program fuzz_spec_replay (tests/fuzz/replay.hpp); its
// seed corpus corpus/spec/ holds small specs of every sampler family from tests/golden/samplers/.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "../../tools/diffuse/run_spec.hpp"
#include "diffuse/io/json.hpp"

namespace {
// true when the bytes ran as a spec.
bool run(const std::uint8_t* data, std::size_t size) {
    diffuse::io::json_value root;
    try {
        root = diffuse::io::parse_json(std::string_view(reinterpret_cast<const char*>(data), size));
    } catch (const diffuse::error&) {
        return false;
    }
    diffuse::cli::run_settings settings;
    settings.limits.max_memory = std::uint64_t{16} << 20;
    settings.limits.max_work = 1000000;
    settings.limits.max_output = std::uint64_t{16} << 20;
    try {
        const auto r = diffuse::cli::run_spec(root, "/nonexistent/diffuse-fuzz-spec", false, {}, settings);
        std::size_t total = r.shape.empty() ? 0 : 1;
        for (auto d : r.shape) total *= d;
        if (total == 0 || r.x.size() != total) __builtin_trap();  // a finished run holds the spec's shape
        return true;
    } catch (const diffuse::cli::spec_error&) {
        return false;
    } catch (const diffuse::error&) {
        return false;
    }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    (void)run(data, size);
    return 0;
}

#ifdef DIFFUSE_FUZZ_REPLAY
#include "replay.hpp"
int main(int argc, char** argv) { return diffuse_fuzz::replay_main(argc, argv, run); }
#endif
