// diffuse in one page: a noise schedule, a tensor view over your own memory, and the forward
// process x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps (Ho et al. 2020, eq. 4) applied to a
// batch whose samples sit at different timesteps.
//
// Run: tools/demo.sh   (or build the target example_quickstart)

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

#include <diffuse/adapt/std.hpp>
#include <diffuse/core/random.hpp>
#include <diffuse/process/forward.hpp>
#include <diffuse/schedules/beta.hpp>

int main() {
    // Stable Diffusion's training schedule, as diffusers builds it from scheduler_config.json.
    const auto schedule = diffuse::discrete_schedule::from_config("scaled_linear", 1000, 0.00085, 0.012);

    // Four samples of 64 values in plain vectors; diffuse::batched views them as a 4 x 64 batch.
    constexpr std::size_t batch = 4, dim = 64;
    std::vector<float> x0(batch * dim, 1.0f), noise(batch * dim), xt(batch * dim);
    for (std::size_t b = 0; b < batch; ++b) {  // counter-based noise: a pure function of (seed, sample, draw, element)
        diffuse::normal_fill<float>(noise.data() + b * dim, dim, /*seed=*/42, /*sample=*/b, /*draw=*/0, 0);
    }

    const std::vector<std::int64_t> t = {0, 250, 500, 999};  // one timestep per sample
    diffuse::q_sample(diffuse::batched(xt, batch), diffuse::batched(x0, batch), diffuse::batched(noise, batch),
                      schedule, t);

    std::printf("scaled_linear schedule: %zu steps, beta_0 = %.6f, beta_999 = %.6f\n", schedule.size(),
                schedule.betas.front(), schedule.betas.back());
    const auto v = diffuse::batched(xt, batch);
    for (std::size_t b = 0; b < v.batch; ++b) {
        double mean = 0.0, sq = 0.0;
        for (std::size_t i = 0; i < v.per_sample; ++i) {
            mean += v.sample(b)[i];
            sq += double(v.sample(b)[i]) * v.sample(b)[i];
        }
        mean /= double(v.per_sample);
        const double sd = std::sqrt(sq / double(v.per_sample) - mean * mean);
        const auto m = diffuse::marginal(schedule, t[b]);
        std::printf("t = %3lld  alpha_t = %.4f  sigma_t = %.4f  | x_t: mean %.4f, sd %.4f\n",
                    static_cast<long long>(t[b]), m.alpha, m.sigma, mean, sd);
    }
    return 0;
}
