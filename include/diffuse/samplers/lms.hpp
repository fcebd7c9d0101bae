#pragma once
// Linear multistep (LMS) sampler in σ-space (k-diffusion's sample_lms; diffusers' LMSDiscreteScheduler).
//
// The Adams–Bashforth idea (Hairer, Nørsett & Wanner, "Solving ODEs I", sec. III.1) on the non-uniform σ
// grid of the probability-flow ODE dx/dσ = d(x, σ) = (x − D(x; σ))/σ (Karras et al. 2022, eq. 4): interpolate
// the last q derivatives d_i, d_{i−1}, …, d_{i−q+1} by a polynomial in σ and integrate it over [σ_i, σ_{i+1}]:
//     x_{i+1} = x_i + Σ_{j<q} c_{ij}·d_{i−j},   c_{ij} = ∫_{σ_i}^{σ_{i+1}} ℓ_j(τ) dτ,
//     ℓ_j(τ) = Π_{k<q, k≠j} (τ − σ_{i−k})/(σ_{i−j} − σ_{i−k})          (Lagrange basis)
// with q = min(i + 1, order). The references integrate ℓ_j numerically (scipy quad, relative tolerance 1e-4);
// ℓ_j is a polynomial of degree q − 1 ≤ 3, so 4-point Gauss–Legendre quadrature (exact to degree 7)
// gives the integral exactly up to rounding.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <vector>

#include "diffuse/core/elementwise.hpp"
#include "diffuse/samplers/grid.hpp"
#include "diffuse/samplers/observer.hpp"
#include "diffuse/samplers/sigma_common.hpp"

namespace diffuse {

struct lms_options {
    std::size_t order = 4;  // 1 … 4
};

// c_{ij} for sample b of the grid: ∫_{σ_i}^{σ_{i+1}} ℓ_j, exactly, by 4-point Gauss–Legendre.
[[nodiscard]] inline double lms_coefficient(const time_grid& grid, std::size_t b, std::size_t order, std::size_t i,
                                            std::size_t j) {
    detail::require(order >= 1 && order <= 4 && order <= i + 1, "lms_coefficient", "order", order,
                    "[1, min(4, i + 1)]");
    detail::require(j < order, "lms_coefficient", "j", j, "[0, order)");
    // Gauss–Legendre nodes and weights on [−1, 1] (Abramowitz & Stegun, Table 25.4).
    static constexpr std::array<double, 4> node = {-0.8611363115940526, -0.3399810435848563, 0.3399810435848563,
                                                   0.8611363115940526};
    static constexpr std::array<double, 4> weight = {0.3478548451374538, 0.6521451548625461, 0.6521451548625461,
                                                     0.3478548451374538};
    const double a = grid(i, b), c = grid(i + 1, b), half = 0.5 * (c - a), mid = 0.5 * (a + c);
    double sum = 0.0;
    for (std::size_t n = 0; n < 4; ++n) {
        const double tau = mid + half * node[n];
        double prod = 1.0;
        for (std::size_t k = 0; k < order; ++k)
            if (k != j) prod *= (tau - grid(i - k, b)) / (grid(i - j, b) - grid(i - k, b));
        sum += weight[n] * prod;
    }
    return half * sum;
}

// LMS: d_i = (x_i − D(x_i; σ_i))/σ_i, then x_{i+1} = x_i + Σ_j c_{ij}·d_{i−j}.
template <class Model, tensor X, class Obs = no_observer>
void sample_lms(Model& m, X&& x_in, const time_grid& grid, const lms_options& opt = {}, Obs&& obs = {}) {
    constexpr const char* where = "sample_lms";
    const auto x = detail::writable_view(std::forward<X>(x_in), where);
    using T = typename decltype(x)::value_type;
    detail::require(opt.order >= 1 && opt.order <= 4, where, "order", opt.order, "[1, 4]");
    detail::sigma_state<T> st(grid, x.batch, x.per_sample, where);
    auto den = st.make_buffer();
    std::vector<typename detail::sigma_state<T>::buffer> ring;  // d_{i}, d_{i−1}, … in slots i mod order
    for (std::size_t k = 0; k < opt.order; ++k) ring.push_back(st.make_buffer());
    std::array<std::vector<double>, 4> c;
    for (auto& v : c) v.assign(x.batch, 0.0);
    for (std::size_t i = 0; i < st.steps; ++i) {
        st.load(grid, i);
        detail::denoise(m, x, st.ones, st.s, den.v(), i, where);
        const auto d = [&](std::size_t j) { return ring[(i - j) % opt.order].v(); };  // d_{i−j}
        for (std::size_t b = 0; b < st.batch; ++b) {
            st.c0[b] = 1.0 / st.s[b];
            st.c1[b] = -1.0 / st.s[b];
        }
        lincomb(d(0), per_sample(st.c0), x, per_sample(st.c1), den.v());  // d_i = (x − D)/σ_i
        const std::size_t q = std::min(i + 1, opt.order);
        for (std::size_t j = 0; j < q; ++j)
            for (std::size_t b = 0; b < st.batch; ++b) c[j][b] = lms_coefficient(grid, grid.shared() ? 0 : b, q, i, j);
        switch (q) {
            case 1: lincomb(x, 1.0, x, per_sample(c[0]), d(0)); break;
            case 2: lincomb(x, 1.0, x, per_sample(c[0]), d(0), per_sample(c[1]), d(1)); break;
            case 3: lincomb(x, 1.0, x, per_sample(c[0]), d(0), per_sample(c[1]), d(1), per_sample(c[2]), d(2)); break;
            default:
                lincomb(x, 1.0, x, per_sample(c[0]), d(0), per_sample(c[1]), d(1), per_sample(c[2]), d(2), per_sample(c[3]),
                        d(3));
        }
        if (detail::observe(obs, i, st.steps, st.s, x, den.v())) return;
    }
}

}  // namespace diffuse
