#pragma once
// A seeded Brownian-tree noise source: one Brownian motion W per (seed, sample id) and element on the noise
// interval [σ_min, σ_max], queried at any point, so the noise an SDE sampler adds over (σ, σ_next) is the
// increment W(σ_next) − W(σ) of one fixed path whatever the step sizes (the virtual Brownian tree of
// Gaines & Lyons 1997 / Li et al. 2020, "Scalable Gradients for Stochastic Differential Equations", sec. 5,
// which k-diffusion's BrownianTreeNoiseSampler uses through torchsde).
//
// Construction (Lévy's Brownian bridge, by bisection): W(σ_min) = 0, W(σ_max) = √(σ_max − σ_min)·z₀.
// Node k (heap numbering, root k = 1 on [σ_min, σ_max], children 2k and 2k+1 on the halves) with endpoint
// values W(a), W(b) sets its midpoint m = (a + b)/2 to
//     W(m) = (W(a) + W(b))/2 + √((b − a)/4)·z_k                         (the bridge's conditional law)
// where z_k is the counter-based normal of draw k for this sample (core/random.hpp). A query descends
// from the root towards the point until the interval is narrower than tolerance·(σ_max − σ_min), then
// interpolates linearly (the missing bridge variance is below tolerance·(σ_max − σ_min)/4).
//
// As a noise source it returns the normalised increment (W(σ_to) − W(σ_from))/√|σ_to − σ_from| for each
// sample, a standard normal for any single interval; the draw number is ignored (the interval is the key).
// Samplers pass the interval through detail::draw_noise.

#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "diffuse/core/error.hpp"
#include "diffuse/core/random.hpp"
#include "diffuse/core/tensor.hpp"
#include "diffuse/core/tensor_copy.hpp"

namespace diffuse {

class brownian_tree_noise {
public:
    brownian_tree_noise(std::uint64_t seed, double sigma_min, double sigma_max, std::uint64_t first_sample = 0,
                        double tolerance = 0x1p-24)
        : seed_(seed), lo_(sigma_min), hi_(sigma_max), first_(first_sample), tol_(tolerance) {
        detail::require(sigma_min >= 0 && std::isfinite(sigma_min), "brownian_tree_noise", "sigma_min", sigma_min, "[0, inf)");
        detail::require(sigma_max > sigma_min && std::isfinite(sigma_max), "brownian_tree_noise", "sigma_max", sigma_max,
                        "(sigma_min, inf)");
        detail::require(tolerance >= 0x1p-30 && tolerance < 1, "brownian_tree_noise", "tolerance", tolerance, "[2^-30, 1)");
    }

    // W(s) of sample `sample` (absolute id) into out[0, n): n elements of the path at noise level s.
    void path(double s, std::uint64_t sample, std::span<double> out) {
        const double slack = 1e-12 * (hi_ - lo_);  // σ grids computed by pow/exp may overshoot by rounding
        if (s < lo_ && s >= lo_ - slack) s = lo_;
        if (s > hi_ && s <= hi_ + slack) s = hi_;
        if (!(s >= lo_ && s <= hi_)) {  // the message is built only on failure
            std::string range = "[";
            range += std::to_string(lo_);
            range += ", ";
            range += std::to_string(hi_);
            range += "]";
            detail::require(false, "brownian_tree_noise", "sigma", s, range);
        }
        const std::size_t n = out.size();
        wa_.assign(n, 0.0);
        wb_.resize(n);
        z_.resize(n);
        normal_fill(wb_.data(), n, seed_, sample, 0, 0);
        const double root = std::sqrt(hi_ - lo_);
        for (std::size_t j = 0; j < n; ++j) wb_[j] *= root;
        double a = lo_, b = hi_;
        std::uint64_t node = 1;
        const double leaf = tol_ * (hi_ - lo_);
        while (b - a > leaf && s != a && s != b) {
            const double mid = 0.5 * (a + b), sd = std::sqrt(0.25 * (b - a));
            normal_fill(z_.data(), n, seed_, sample, node, 0);
            const bool left = s < mid;
            for (std::size_t j = 0; j < n; ++j) {
                const double wm = 0.5 * (wa_[j] + wb_[j]) + sd * z_[j];
                (left ? wb_[j] : wa_[j]) = wm;
            }
            (left ? b : a) = mid;
            node = 2 * node + (left ? 0 : 1);
        }
        const double w = b > a ? (s - a) / (b - a) : 0.0;
        for (std::size_t j = 0; j < n; ++j) out[j] = wa_[j] + w * (wb_[j] - wa_[j]);
    }

    // Noise-source interface: sample b of out = (W(σ_to[b]) − W(σ_from[b]))/√|σ_to[b] − σ_from[b]| (0 when equal).
    // The tree is walked on the host: a device state gets the increments in one host-to-device copy.
    template <class V>
    void operator()(const V& out, std::uint64_t draw, std::span<const double> sigma_from, std::span<const double> sigma_to) {
        using T = std::remove_const_t<typename V::value_type>;
        (void)draw;  // (the tree is keyed by the σ interval, not by the draw)
        if constexpr (V::space != memory_space::host) {
            thread_local std::vector<T> staging;
            staging.resize(out.size());
            (*this)(tensor_view<T>{staging.data(), out.batch, out.per_sample}, draw, sigma_from, sigma_to);
            detail::copy_from_host(out, std::span<const T>(staging));
            return;
        }
        if (sigma_from.size() != out.batch || sigma_to.size() != out.batch)
            detail::fail("brownian_tree_noise", "the noise interval needs one sigma per sample");
        p0_.resize(out.per_sample);
        p1_.resize(out.per_sample);
        for (std::size_t b = 0; b < out.batch; ++b) {
            auto* o = out.sample(b);
            const double gap = std::abs(sigma_to[b] - sigma_from[b]);
            if (gap == 0) {
                for (std::size_t j = 0; j < out.per_sample; ++j) o[j] = 0;
                continue;
            }
            path(sigma_from[b], first_ + b, p0_);
            path(sigma_to[b], first_ + b, p1_);
            const double inv = 1.0 / std::sqrt(gap);
            for (std::size_t j = 0; j < out.per_sample; ++j)
                o[j] = static_cast<typename V::value_type>((p1_[j] - p0_[j]) * inv);
        }
    }

private:
    std::uint64_t seed_;
    double lo_, hi_;
    std::uint64_t first_;
    double tol_;
    std::vector<double> wa_, wb_, z_, p0_, p1_;
};

}  // namespace diffuse
