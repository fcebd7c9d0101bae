#pragma once
// Editing on top of any discrete sampler: img2img with per-sample strength (Meng et al. 2022, SDEdit),
// inpainting with a mask (re-noise the known region to each step's level, as in Lugmayr et al. 2022 without
// resampling), and truncated sampling (stop after k steps and return the model's x̂₀).
//
//   img2img_grid(timesteps, strengths)   one grid row per sample: sample b starts at index N − min(⌊N·s_b⌋, N)
//                                        (diffusers' get_timesteps); weaker rows are padded at the front
//                                        with their start timestep, which samplers treat as "hold still"
//   img2img_start(x, image, noise, ᾱ, grid)  x_b = √ᾱ_{t0,b}·image_b + √(1−ᾱ_{t0,b})·noise_b (q(x_t|x₀), eq. 4)
//   inpaint_observer                      after each step: x ← m⊙x + (1−m)⊙(√ᾱ_p·known + √(1−ᾱ_p)·z)
//   truncate_observer                     stops after `steps` steps, keeping that step's x̂₀

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "diffuse/core/elementwise.hpp"
#include "diffuse/core/space_buffer.hpp"
#include "diffuse/samplers/discrete.hpp"
#include "diffuse/samplers/grid.hpp"
#include "diffuse/samplers/noise_source.hpp"
#include "diffuse/samplers/observer.hpp"
#include "diffuse/schedules/timesteps.hpp"

namespace diffuse {

[[nodiscard]] inline time_grid img2img_grid(std::span<const std::int64_t> timesteps, std::span<const double> strengths) {
    const std::size_t N = timesteps.size();
    detail::require(N >= 1, "img2img_grid", "timesteps.size()", N, ">= 1");
    detail::require(!strengths.empty(), "img2img_grid", "strengths.size()", strengths.size(), ">= 1");
    std::vector<std::size_t> start(strengths.size());
    std::size_t first = N;
    for (std::size_t b = 0; b < strengths.size(); ++b) {
        const auto s = img2img_start_index(N, strengths[b]);
        detail::require(s.init_timestep >= 1, "img2img_grid", "strength", strengths[b],
                        "large enough that int(N * strength) >= 1");
        start[b] = s.t_start;
        first = std::min(first, s.t_start);
    }
    std::vector<std::vector<double>> rows;
    for (std::size_t b = 0; b < strengths.size(); ++b) {
        std::vector<double> r;
        for (std::size_t i = first; i < N; ++i) r.push_back(double(timesteps[std::max(i, start[b])]));
        r.push_back(-1.0);
        rows.push_back(std::move(r));
    }
    return time_grid::per_sample(rows);
}

// image and noise must have x's shape.
template <tensor X, tensor Img, tensor Z>
void img2img_start(X&& x, Img&& image, Z&& noise, std::span<const double> alphas_cumprod, const time_grid& grid) {
    const auto o = detail::writable_view(std::forward<X>(x), "img2img_start");
    detail::require_shape(view(image), o, "img2img_start", "image");
    detail::require_shape(view(noise), o, "img2img_start", "noise");
    grid.check_batch(o.batch, "img2img_start");
    std::vector<double> a(o.batch), s(o.batch);
    for (std::size_t b = 0; b < o.batch; ++b) {
        const auto t = detail::grid_timestep(grid, 0, b, alphas_cumprod.size(), false, "img2img_start");
        a[b] = std::sqrt(alphas_cumprod[std::size_t(t)]);
        s[b] = std::sqrt(1.0 - alphas_cumprod[std::size_t(t)]);
    }
    lincomb(o, per_sample(a), std::forward<Img>(image), per_sample(s), std::forward<Z>(noise));
}

// Keeps the known region on the forward process: after step i the unmasked part (mask 0) is replaced by the
// known image noised to the next grid point (no noise past the end). mask: 1 = generate, 0 = keep; known and
// mask have x's shape.
// Noise draws are numbered draw_offset + i so they never collide with the sampler's own draws. S: the memory
// space of x, known and mask (host by default).
template <class T, class Noise = counter_noise, memory_space S = memory_space::host>
struct inpaint_observer {
    tensor_view<T, S> x;
    tensor_view<const T, S> known, mask;
    std::span<const double> alphas_cumprod;
    const time_grid* grid;
    Noise noise{};
    std::uint64_t draw_offset = std::uint64_t{1} << 31;
    space_buffer<T, S> z = space_buffer<T, S>(x.size()), renoised = space_buffer<T, S>(x.size());
    std::vector<double> a = std::vector<double>(x.batch), s = std::vector<double>(x.batch);

    void operator()(const step_info<T, S>& info) {
        detail::require_shape(known, x, "inpaint_observer", "known");
        detail::require_shape(mask, x, "inpaint_observer", "mask");
        if (z.size() != x.size() || renoised.size() != x.size() || a.size() != x.batch || s.size() != x.batch)
            detail::fail("inpaint_observer", "x was replaced after construction: make a new observer for a new x");
        for (std::size_t b = 0; b < x.batch; ++b) {
            const auto p = detail::grid_timestep(*grid, info.step + 1, b, alphas_cumprod.size(), true, "inpaint_observer");
            const double ac = p >= 0 ? alphas_cumprod[std::size_t(p)] : 1.0;
            a[b] = std::sqrt(ac);
            s[b] = std::sqrt(1.0 - ac);
        }
        const tensor_view<T, S> zv{z.data(), x.batch, x.per_sample}, rv{renoised.data(), x.batch, x.per_sample};
        noise(zv, draw_offset + info.step);
        lincomb(rv, per_sample(a), known, per_sample(s), zv);
        transform(x, [](T xv, T m, T r) { return m * xv + (T(1) - m) * r; }, x, mask, rv);
    }
};

// Truncated sampling: stop after `steps` steps and keep that step's x̂₀ in x0 (a host vector: host states only).
template <class T>
struct truncate_observer {
    std::size_t steps;
    std::vector<T>* x0;
    bool operator()(const step_info<T>& info) {
        if (info.step + 1 < steps) return true;
        x0->assign(info.denoised.data, info.denoised.data + info.denoised.size());
        return false;
    }
};

}  // namespace diffuse
