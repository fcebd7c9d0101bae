// The example of README.md, compiled and run as a test so that the front page stays true.
// Keep the two in sync.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

#include <diffuse/adapt/eigen.hpp>
#include <diffuse/core/random.hpp>
#include <diffuse/process/forward.hpp>
#include <diffuse/schedules/beta.hpp>

int main() {
    // Stable Diffusion's training schedule, as diffusers builds it from scheduler_config.json.
    auto schedule = diffuse::discrete_schedule::from_config("scaled_linear", 1000, 0.00085, 0.012);

    // Your tensors, your memory: an Eigen matrix is a batch whose columns are samples.
    Eigen::MatrixXf x0 = Eigen::MatrixXf::Ones(64, 4), noise(64, 4), xt(64, 4);
    for (std::size_t b = 0; b < 4; ++b)  // counter-based noise: a pure function of (seed, sample, draw, element)
        diffuse::normal_fill<float>(noise.col(Eigen::Index(b)).data(), 64, /*seed=*/42, /*sample=*/b, /*draw=*/0, 0);

    // x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps, one timestep per sample, one pass over memory.
    std::vector<std::int64_t> t = {0, 250, 500, 999};
    diffuse::q_sample(xt, x0, noise, schedule, t);

    auto v = diffuse::view(xt);  // zero-copy: v.data == xt.data(), v.batch == 4, v.per_sample == 64

    // Checks, so that this program fails if the README's claims stop being true.
    const auto m = diffuse::marginal(schedule, 999);
    const float expected = static_cast<float>(m.alpha * 1.0 + m.sigma * double(noise(5, 3)));
    const bool ok = v.data == xt.data() && v.batch == 4 && v.per_sample == 64 &&
                    std::abs(xt(5, 3) - expected) <= 1e-6f * (1.0f + std::abs(expected));
    std::printf("x_t(5, 3) = %.6f (expected %.6f): %s\n", double(xt(5, 3)), double(expected), ok ? "ok" : "WRONG");
    return ok ? 0 : 1;
}
