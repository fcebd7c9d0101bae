#pragma once
// Where stochastic samplers get their per-step noise.
//
// A noise source is called as noise(out, draw): fill `out` (a tensor view of the batch) with the
// standard normal noise of draw number `draw` (0, 1, 2, … in the order the sampler draws). Samplers
// number their draws deterministically, so:
//   counter_noise    — the default: values are a pure function of (seed, sample id, draw, element), the
//                      same for any batch split, thread count or device;
//   recorded_noise   — replays noise recorded elsewhere (a reference implementation's torch.randn
//                      calls, stored as .npy), so a port can be fed identical noise and compared.

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "diffuse/core/error.hpp"
#include "diffuse/core/fill_normal.hpp"
#include "diffuse/core/lincomb_noise.hpp"
#include "diffuse/core/tensor.hpp"
#include "diffuse/core/tensor_copy.hpp"

namespace diffuse {

// The noise slot of a deterministic sampler (DPM-Solver++ 2M, UniPC, LMS, DDIM inversion, the PF-ODE
// solvers): every sampler takes its arguments in one order, (model, x, [schedule], grid, options, noise,
// observer); a deterministic one takes no_noise there, and drawing from it is a bug.
struct no_noise {
    template <class V>
    void operator()(const V&, std::uint64_t) const {
        detail::fail("no_noise", "a deterministic update drew noise");
    }
};

// What the samplers accept as a noise source: callable as noise(view, draw), or as noise(view, draw, σ_from,
// σ_to) for sources keyed by the noise interval (the Brownian tree).
// S: the memory space of the sampler's state (host by default).
template <class N, class T, memory_space S = memory_space::host>
concept noise_source =
    requires(N& n, tensor_view<T, S> out, std::uint64_t draw) { n(out, draw); } ||
    requires(N& n, tensor_view<T, S> out, std::uint64_t draw, std::span<const double> sigma) { n(out, draw, sigma, sigma); };

struct counter_noise {
    std::uint64_t seed = 0;
    std::uint64_t first_sample = 0;  // id of sample 0 of this batch within the whole job

    template <class V>
    void operator()(const V& out, std::uint64_t draw) const {
        fill_normal(out, seed, draw, first_sample);
    }
};

namespace detail {
// The noise term of an update for lincomb_noise (core/lincomb_noise.hpp): for counter_noise the draw itself
// (normal_noise: generated inside the update's single pass, never stored), for any other source the buffer
// `z` filled by noise(z, draw) — recorded noise replays through it unchanged. Same bits either way.
template <class Noise, class V>
auto noise_term(Noise& noise, const V& z, std::uint64_t draw) {
    if constexpr (std::is_same_v<std::remove_cvref_t<Noise>, counter_noise>) {
        return normal_noise{noise.seed, draw, noise.first_sample};
    } else {
        noise(z, draw);
        return z;
    }
}
}  // namespace detail

// Replays `draws` consecutive noise tensors, each batch × per_sample values, in draw order. A device state gets
// each draw in one host-to-device copy (core/tensor_copy.hpp's copy_from_host).
class recorded_noise {
public:
    recorded_noise(std::vector<double> values, std::size_t per_draw) : values_(std::move(values)), per_draw_(per_draw) {
        detail::require(per_draw > 0 && values_.size() % per_draw == 0, "recorded_noise", "per_draw", per_draw,
                        "a positive divisor of the recorded size " + std::to_string(values_.size()));
    }
    [[nodiscard]] std::size_t draws() const noexcept { return values_.size() / per_draw_; }

    template <class V>
    void operator()(const V& out, std::uint64_t draw) const {
        if (out.size() != per_draw_)
            detail::fail("recorded_noise", "a draw holds " + std::to_string(per_draw_) + " values but the sampler asks for " +
                                               std::to_string(out.size()));
        if (draw >= draws())
            detail::fail("recorded_noise", "draw " + std::to_string(draw) + " requested but only " +
                                               std::to_string(draws()) + " were recorded");
        using T = std::remove_const_t<typename V::value_type>;
        const double* src = values_.data() + draw * per_draw_;
        if constexpr (V::space == memory_space::host) {
            for (std::size_t i = 0; i < per_draw_; ++i) out.data[i] = static_cast<T>(src[i]);
        } else {
            thread_local std::vector<T> staging;
            staging.resize(per_draw_);
            for (std::size_t i = 0; i < per_draw_; ++i) staging[i] = static_cast<T>(src[i]);
            detail::copy_from_host(out, std::span<const T>(staging));
        }
    }

private:
    std::vector<double> values_;
    std::size_t per_draw_;
};

}  // namespace diffuse
