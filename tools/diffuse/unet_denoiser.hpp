#pragma once
// The U-Net denoiser of a sampling spec (docs/cli.md):
//   "denoiser": {"type": "unet2d", "path": "MODEL_DIR", "class_labels": [...], "null_class": 10,
//                "guidance_scale": 3.0, "guidance_rescale": 0.0}
// MODEL_DIR is a diffusers UNet2DModel folder; its scheduler_config.json (when present) supplies the
// defaults of spec.schedule, the prediction type, the sampler and the DDPM/DDIM options.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "diffuse/io/diffusers.hpp"
#include "diffuse/nn/unet2d.hpp"

namespace diffuse::cli {

struct spec_unet {
    explicit spec_unet(nn::unet2d n) : net(std::move(n)) { net.set_profile(&profile); }
    spec_unet(const spec_unet&) = delete;
    spec_unet& operator=(const spec_unet&) = delete;
    nn::unet2d net;
    nn::unet2d_profile profile;             // counts the network calls (profile.forwards) and their time
    std::optional<io::scheduler_config> sched;
    std::size_t h = 0, w = 0;
    std::vector<std::int64_t> labels;       // per batch row (class-conditional models)
    std::optional<std::int64_t> null_class; // the label of unconditional rows (classifier-free guidance)
    std::optional<double> guidance_scale;
    double guidance_rescale = 0.0;

    [[nodiscard]] nn::unet2d_network network() {
        nn::unet2d_network n(net, h, w);
        n.set_class_labels(labels, null_class);
        return n;
    }
};

// The spec sampler that runs a diffusers scheduler class's algorithm (for a folder's default).
[[nodiscard]] inline std::optional<std::string> sampler_for_scheduler(const std::string& class_name) {
    static const std::pair<const char*, const char*> table[] = {
        {"DDPMScheduler", "ddpm"},
        {"DDIMScheduler", "ddim"},
        {"EulerDiscreteScheduler", "euler"},
        {"EulerAncestralDiscreteScheduler", "euler_ancestral"},
        {"HeunDiscreteScheduler", "heun"},
        {"KDPM2DiscreteScheduler", "dpm_2"},
        {"KDPM2AncestralDiscreteScheduler", "dpm_2_ancestral"},
        {"LMSDiscreteScheduler", "lms"},
        {"DPMSolverMultistepScheduler", "dpmpp_2m"},
        {"UniPCMultistepScheduler", "unipc"},
    };
    for (const auto& [cls, name] : table)
        if (class_name == cls) return std::string(name);
    return std::nullopt;
}

}  // namespace diffuse::cli
