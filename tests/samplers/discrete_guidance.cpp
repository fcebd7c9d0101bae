// DDPM / DDIM behaviour beyond parity, and guidance / editing (CFG, img2img, inpainting, truncation).
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "diffuse/adapt/std.hpp"
#include "diffuse/guidance/cfg.hpp"
#include "diffuse/guidance/editing.hpp"
#include "diffuse/samplers/analytic.hpp"
#include "diffuse/samplers/ddim.hpp"
#include "diffuse/samplers/ddpm.hpp"
#include "diffuse/schedules/beta.hpp"
#include "diffuse/schedules/timesteps.hpp"

using namespace diffuse;

namespace {
const auto sched = discrete_schedule::from_config("linear", 1000);
const gaussian_mixture data({0.4, 0.6}, {-1.0, 0.5, 0.2, 1.0, -0.5, 0.3}, {0.05, 0.1});
constexpr std::size_t B = 3, D = 3;

template <class T>
std::vector<T> start_noise(std::uint64_t seed = 1) {
    std::vector<T> x(B * D);
    fill_normal(batched(x, B), seed, 99, 0);
    return x;
}
auto model_eps() { return analytic_model(data, prediction::epsilon, discrete_time(sched.alphas_cumprod)); }
}  // namespace

TEST_CASE("ddim/ddpm: float vs double, std::vector vs tensor_view, observer stop", "[samplers][discrete]") {
    const auto ts = discrete_timesteps(1000, 20, timestep_spacing::trailing);
    const auto grid = discrete_grid(ts);
    auto m = model_eps();
    ddim_options o;
    o.clip_sample = false;
    o.eta = 0.0;  // deterministic: the counter noise of float and double tensors differs
    auto xd = start_noise<double>();
    std::vector<float> xf(xd.begin(), xd.end());
    sample_ddim(m, batched(xd, B), sched.alphas_cumprod, grid, o, counter_noise{5});
    sample_ddim(m, tensor_view<float>{xf.data(), B, D}, sched.alphas_cumprod, grid, o, counter_noise{5});
    for (std::size_t i = 0; i < xd.size(); ++i) CHECK(xf[i] == Approx(xd[i]).margin(1e-5));
    // the sample lands near the data: each is within a few σ of a component mean
    auto xp = start_noise<double>();
    ddpm_options po;
    po.clip_sample = false;
    std::size_t seen = 0;
    sample_ddpm(m, batched(xp, B), sched.alphas_cumprod, grid, po, counter_noise{3},
                [&](const step_info<double>& s) { return ++seen < 5 && s.denoised.size() == B * D; });
    CHECK(seen == 5);
}

TEST_CASE("ddim: next_in_list equals diffusers' fixed stride for leading spacing only", "[samplers][discrete]") {
    auto m = model_eps();
    for (auto sp : {timestep_spacing::leading, timestep_spacing::linspace}) {
        const auto ts = discrete_timesteps(1000, 7, sp);
        ddim_options a, b;
        a.clip_sample = b.clip_sample = false;
        b.prev_timestep = prev_timestep_rule::fixed_stride;
        auto x1 = start_noise<double>(), x2 = x1;
        sample_ddim(m, batched(x1, B), sched.alphas_cumprod, discrete_grid(ts), a);
        sample_ddim(m, batched(x2, B), sched.alphas_cumprod, discrete_grid(ts), b);
        if (sp == timestep_spacing::leading) CHECK(x1 == x2);
        else CHECK(x1 != x2);
    }
}

TEST_CASE("per-sample grids: mixed img2img strengths equal separate runs", "[samplers][discrete][guidance]") {
    const auto ts = discrete_timesteps(1000, 10, timestep_spacing::leading);
    const std::vector<double> strengths = {1.0, 0.5, 0.3};
    const auto grid = img2img_grid(ts, strengths);
    CHECK(grid.steps() == 10);
    CHECK(grid(0, 1) == double(ts[5]));  // padded with its start timestep
    CHECK(grid(5, 1) == double(ts[5]));
    CHECK(grid(6, 1) == double(ts[6]));
    std::vector<double> image = {0.9, -0.2, 0.4, -1.0, 0.5, 0.3, 0.1, 0.1, -0.6};
    const auto z = start_noise<double>(8);
    for (int which = 0; which < 2; ++which) {
        std::vector<double> x(B * D);
        img2img_start(batched(x, B), batched(image, B), batched(z, B), sched.alphas_cumprod, grid);
        auto m = model_eps();
        ddpm_options o;
        ddim_options od;
        od.eta = 0.5;
        if (which == 0) sample_ddpm(m, batched(x, B), sched.alphas_cumprod, grid, o, counter_noise{11});
        else sample_ddim(m, batched(x, B), sched.alphas_cumprod, grid, od, counter_noise{11});
        for (std::size_t b = 0; b < B; ++b) {
            // sample b alone with its own strength (counter noise depends only on sample id and draw: the
            // padded steps draw too, so sample b's draws are numbered the same way)
            const auto g1 = img2img_grid(ts, std::vector<double>{strengths[b]});
            std::vector<double> xb(D), ib(image.begin() + b * D, image.begin() + (b + 1) * D),
                zb(z.begin() + b * D, z.begin() + (b + 1) * D);
            img2img_start(batched(xb, 1), batched(ib, 1), batched(zb, 1), sched.alphas_cumprod, g1);
            auto m1 = model_eps();
            const std::size_t skip = grid.steps() - g1.steps();  // held steps before it starts
            auto shifted = [&](const auto& v, std::uint64_t draw) { fill_normal(v, 11, draw + skip, b); };
            if (which == 0) sample_ddpm(m1, batched(xb, 1), sched.alphas_cumprod, g1, o, shifted);
            else sample_ddim(m1, batched(xb, 1), sched.alphas_cumprod, g1, od, shifted);
            for (std::size_t d = 0; d < D; ++d) CHECK(x[b * D + d] == Approx(xb[d]).epsilon(1e-12));
        }
    }
}

TEST_CASE("classifier-free guidance: one batched call, scale 0/1 limits, rescale", "[samplers][discrete][guidance]") {
    auto inner = model_eps();
    inner.net().conditional_weights = std::vector<double>{0.0, 1.0};
    const std::vector<double> x = start_noise<double>(4);
    std::vector<double> al(B), si(B), t(B, 500.0);
    for (std::size_t b = 0; b < B; ++b) {
        al[b] = std::sqrt(sched.alphas_cumprod[500]);
        si[b] = std::sqrt(1 - sched.alphas_cumprod[500]);
    }
    std::vector<double> cond(B * D), uncond(B * D), g(B * D);
    const std::vector<std::uint8_t> ones(B, 1);
    inner.predict(batched(x, B), al, si, prediction::epsilon, batched(cond, B), t);
    inner.predict(batched(x, B), al, si, prediction::epsilon, batched(uncond, B), t, 0, ones);
    const auto calls = inner.net().calls;
    cfg_model<decltype(inner)> g1(inner, 1.0), g0(inner, 0.0), g7(inner, 7.5), g7r(inner, 7.5, 0.7);
    g1.predict(batched(x, B), al, si, prediction::epsilon, batched(g, B), t);
    CHECK(inner.net().calls == calls + 1);
    for (std::size_t i = 0; i < g.size(); ++i) CHECK(g[i] == Approx(cond[i]).epsilon(1e-13));
    g0.predict(batched(x, B), al, si, prediction::epsilon, batched(g, B), t);
    for (std::size_t i = 0; i < g.size(); ++i) CHECK(g[i] == Approx(uncond[i]).epsilon(1e-13));
    std::vector<double> gr(B * D);
    g7.predict(batched(x, B), al, si, prediction::epsilon, batched(g, B), t);
    g7r.predict(batched(x, B), al, si, prediction::epsilon, batched(gr, B), t);
    auto sd = [](const double* p) {
        double m = 0, s = 0;
        for (std::size_t i = 0; i < D; ++i) m += p[i] / D;
        for (std::size_t i = 0; i < D; ++i) s += (p[i] - m) * (p[i] - m);
        return std::sqrt(s / (D - 1));
    };
    for (std::size_t b = 0; b < B; ++b)
        for (std::size_t d = 0; d < D; ++d) {
            const std::size_t i = b * D + d;
            CHECK(g[i] == Approx(uncond[i] + 7.5 * (cond[i] - uncond[i])).epsilon(1e-12));
            const double r = sd(&cond[b * D]) / sd(&g[b * D]);
            CHECK(gr[i] == Approx(0.7 * g[i] * r + 0.3 * g[i]).epsilon(1e-12));
        }
    // guided sampling runs through the samplers unchanged
    auto xs = start_noise<double>();
    ddim_options o;
    o.clip_sample = false;
    sample_ddim(g7, batched(xs, B), sched.alphas_cumprod, discrete_grid(discrete_timesteps(1000, 10)), o);
    for (double v : xs) CHECK(std::isfinite(v));
}

TEST_CASE("inpainting keeps the known region; truncation returns x0", "[samplers][discrete][guidance]") {
    const auto ts = discrete_timesteps(1000, 10, timestep_spacing::trailing);
    const auto grid = discrete_grid(ts);
    const std::vector<double> known = {0.3, 0.3, 0.3, -0.4, -0.4, -0.4, 0.0, 0.1, 0.2};
    const std::vector<double> mask = {1, 0, 1, 0, 0, 0, 1, 1, 1};
    auto x = start_noise<double>();
    auto m = model_eps();
    inpaint_observer<double> obs{batched(x, B), batched(known, B), batched(mask, B), sched.alphas_cumprod, &grid};
    ddpm_options o;
    sample_ddpm(m, batched(x, B), sched.alphas_cumprod, grid, o, counter_noise{2}, obs);
    for (std::size_t i = 0; i < x.size(); ++i)
        if (mask[i] == 0) CHECK(x[i] == known[i]);

    std::vector<double> x0, seen;
    auto y = start_noise<double>();
    ddim_options od;
    truncate_observer<double> tr{4, &x0};
    std::size_t steps = 0;
    sample_ddim(m, batched(y, B), sched.alphas_cumprod, grid, od, counter_noise{}, [&](const step_info<double>& s) {
        ++steps;
        seen.assign(s.denoised.data, s.denoised.data + s.denoised.size());
        return tr(s);
    });
    CHECK(steps == 4);
    CHECK(x0 == seen);
}

TEST_CASE("discrete samplers reject bad grids and options", "[samplers][discrete]") {
    auto m = model_eps();
    auto x = start_noise<double>();
    CHECK_THROWS_AS(sample_ddim(m, batched(x, B), sched.alphas_cumprod, time_grid({500.5, -1.0})), diffuse::error);
    CHECK_THROWS_AS(sample_ddpm(m, batched(x, B), sched.alphas_cumprod, time_grid({1000.0, -1.0})), diffuse::error);
    ddim_options o;
    o.eta = -1;
    CHECK_THROWS_AS(sample_ddim(m, batched(x, B), sched.alphas_cumprod, time_grid({500.0, -1.0}), o), diffuse::error);
    ddpm_options p;
    p.variance_type = ddpm_variance::learned_range;
    cfg_model<decltype(m)> g(m, 2.0);
    CHECK_THROWS_AS(sample_ddpm(g, batched(x, B), sched.alphas_cumprod, time_grid({500.0, -1.0}), p), diffuse::error);
    CHECK_THROWS_AS(img2img_grid(discrete_timesteps(1000, 10), std::vector<double>{0.05}), diffuse::error);
}
