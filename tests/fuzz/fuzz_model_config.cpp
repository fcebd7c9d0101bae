// libFuzzer target for the model-folder configuration readers: any bytes either parse as a UNet2DModel
// config.json (whose architecture then yields its tensor list, without allocating weights) or a
// scheduler_config.json, or throw diffuse::error. A crash, a sanitizer report or a trap is a bug.
// Built with -DDIFFUSE_FUZZ_REPLAY it is the CTest program fuzz_model_config_replay (tests/fuzz/replay.hpp).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "diffuse/io/diffusers.hpp"
#include "diffuse/io/json.hpp"
#include "diffuse/nn/unet2d.hpp"
#include "diffuse/nn/unet2d_config.hpp"

namespace {
// true when the input is a valid UNet2DModel config.
bool parse_config(const std::uint8_t* data, std::size_t size) {
    diffuse::io::json_value v;
    try {
        v = diffuse::io::parse_json(std::string_view(reinterpret_cast<const char*>(data), size));
    } catch (const diffuse::error&) {
        return false;
    }
    try {
        (void)diffuse::io::parse_scheduler_config(v);
    } catch (const diffuse::error&) {
    }
    try {
        const auto cfg = diffuse::nn::parse_unet2d_config(v);
        const auto tensors = diffuse::nn::unet2d::expected_tensors(cfg);
        if (tensors.empty()) __builtin_trap();  // every architecture has conv_in at least
        return true;
    } catch (const diffuse::error&) {
        return false;
    }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    (void)parse_config(data, size);
    return 0;
}

#ifdef DIFFUSE_FUZZ_REPLAY
#include "replay.hpp"
int main(int argc, char** argv) { return diffuse_fuzz::replay_main(argc, argv, parse_config); }
#endif
