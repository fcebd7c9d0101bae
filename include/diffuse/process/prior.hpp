#pragma once
// Sampling and scoring the prior of a continuous process (vp_sde, subvp_sde, ve_sde):
// p_T = N(prior_mean, prior_std²·I) (Song et al. 2021, §3.3 and Appendix C).
//
//   prior_sample(x, sde, seed[, draw, first_sample])   x ~ p_T, counter-based noise
//   prior_logp(x, sde, out)                            out[b] = log p_T(x_b)

#include <cstdint>
#include <span>
#include <vector>

#include "diffuse/core/fill_normal.hpp"
#include "diffuse/core/reduce.hpp"

namespace diffuse {

template <class Sde, class X>
void prior_sample(X&& x, const Sde& sde, std::uint64_t seed, std::uint64_t draw = 0, std::uint64_t first_sample = 0) {
    const auto v = view(x);
    fill_normal(v, seed, draw, first_sample);
    if (sde.prior_std() != 1.0) lincomb(v, sde.prior_std(), v);
}

template <class Sde, class X>
void prior_logp(X&& x, const Sde& sde, std::span<double> out) {
    const auto v = view(x);
    sum_squares(v, out);  // prior mean is 0 for every process here
    for (auto& o : out) o = sde.prior_logp(o, double(v.per_sample));
}

}  // namespace diffuse
