#pragma once
// Prior sampling for the continuous SDEs (Song et al. 2021, §3: x(T) ~ p_T): N(0, I) for VP and sub-VP,
// N(0, σ_max² I) for VE. The noise comes from the counter-based generator (fill_normal) on a draw number
// reserved for the prior, so a sampler's per-step draws 0, 1, 2, … under the same seed never repeat it.

#include <cstdint>

#include "diffuse/core/elementwise.hpp"
#include "diffuse/core/fill_normal.hpp"

namespace diffuse {

// Draw number used by sample_prior: the last one the generator accepts (draws are < 2^32), far from any
// sampler's step draws.
inline constexpr std::uint64_t prior_draw = (std::uint64_t(1) << 32) - 1;

// x = prior_std · z, z ~ N(0, I) from (seed, sample id first_sample + b, prior_draw).
template <class Sde, tensor X>
void sample_prior(const Sde& sde, X&& x_in, std::uint64_t seed, std::uint64_t first_sample = 0) {
    auto x = detail::writable_view(std::forward<X>(x_in), "sample_prior");
    fill_normal(x, seed, prior_draw, first_sample);
    const double s = sde.prior_std();
    if (s != 1.0) lincomb(x, s, x);
}

}  // namespace diffuse
