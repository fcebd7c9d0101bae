// Generating from a diffusers model folder: the second example of README.md, compiled and run as a test so
// that the front page stays true (keep the two in sync). Default folder: the small random-weight copy of
// google/ddpm-cifar10-32's architecture in tests/golden/unet/cifar10_tiny (16×16); pass a real folder, e.g.
//   example_unet_sample ddpm-cifar10-32 32 samples.png
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <diffuse/adapt/std.hpp>
#include <diffuse/core/fill_normal.hpp>
#include <diffuse/io/diffusers.hpp>
#include <diffuse/io/image_grid.hpp>
#include <diffuse/io/png.hpp>
#include <diffuse/samplers/ddim.hpp>

#ifndef DIFFUSE_SOURCE_DIR
#define DIFFUSE_SOURCE_DIR "."
#endif

int main(int argc, char** argv) {
    const std::string dir = argc > 1 ? argv[1] : DIFFUSE_SOURCE_DIR "/tests/golden/unet/cifar10_tiny";
    const std::size_t size = argc > 2 ? std::stoul(argv[2]) : 16;
    const std::string png = argc > 3 ? argv[3] : "unet_sample.png";

    // The network and the schedule it was trained with, as diffusers saved them.
    auto unet = diffuse::io::load_unet2d(dir);
    const auto sched = diffuse::io::read_scheduler_config(dir + "/scheduler_config.json");
    const auto schedule = diffuse::discrete_schedule::from_config(sched.schedule);
    diffuse::model m(diffuse::nn::unet2d_network(unet, size, size), sched.prediction_type,
                     diffuse::discrete_time(schedule.alphas_cumprod));

    // 8 images, DDIM with 25 steps from counter-based noise (the same images for any batch split).
    const std::size_t batch = 8, channels = unet.config().in_channels;
    std::vector<float> x(batch * channels * size * size);
    diffuse::fill_normal(diffuse::batched(x, batch), /*seed=*/0, /*draw=*/0, /*first_sample=*/0);
    const auto timesteps = diffuse::discrete_timesteps(schedule.size(), 25, sched.spacing, sched.steps_offset);
    diffuse::ddim_options opt;
    opt.clip_sample = sched.clip_sample;
    diffuse::sample_ddim(m, diffuse::batched(x, batch), schedule.alphas_cumprod, diffuse::discrete_grid(timesteps), opt);

    const auto grid = diffuse::io::image_grid(x.data(), batch, channels, size, size, 4);
    diffuse::io::write_png(png, grid.width, grid.height, grid.rgb);

    // Checks, so that this program fails if the README's claims stop being true.
    for (float v : x)
        if (!std::isfinite(v) || (sched.clip_sample && std::abs(v) > 1.0f + 1e-5f)) return 1;
    std::printf("%zu images of %zux%zu from %s -> %s (%zu parameters)\n", batch, size, size, dir.c_str(), png.c_str(),
                unet.parameter_count());
    return 0;
}
