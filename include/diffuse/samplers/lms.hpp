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
//
// lms_stepper (samplers/stepper.hpp) holds the derivative history; sample_lms is the one-call form over it.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <vector>

#include "diffuse/core/elementwise.hpp"
#include "diffuse/samplers/grid.hpp"
#include "diffuse/samplers/noise_source.hpp"
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

// LMS: d_i = (x_i − D(x_i; σ_i))/σ_i, then x_{i+1} = x_i + Σ_j c_{ij}·d_{i−j}. The stepper keeps the last
// `order` derivatives in a ring (d_{i−j} in slot (i − j) mod order). Deterministic: Noise is only the slot.
template <class T, class Noise = no_noise, memory_space S = memory_space::host>
class lms_stepper : public detail::sigma_stepper<lms_stepper<T, Noise, S>, T, Noise, S> {
    using base = detail::sigma_stepper<lms_stepper<T, Noise, S>, T, Noise, S>;
    friend class stepper<lms_stepper<T, Noise, S>, T, S>;

public:
    lms_stepper(batch_shape shape, const time_grid& grid, const lms_options& opt = {}, Noise noise = {})
        : base(shape, grid, std::forward<Noise>(noise), "sample_lms"), opt_(opt) {
        detail::require(opt_.order >= 1 && opt_.order <= 4, this->where(), "order", opt_.order, "[1, 4]");
        for (std::size_t k = 0; k < opt_.order; ++k) ring_.push_back(this->st.make_buffer());
        for (auto& v : c_) v.assign(shape.batch, 0.0);
    }

private:
    // d_{i−j} of the current step i.
    tensor_view<T, S> d(std::size_t j) noexcept { return ring_[(this->step_index() - j) % opt_.order].v(); }

    detail::step_task run_step(tensor_view<T, S> x) {
        auto& st = this->st;
        const auto& grid = this->grid();
        const std::size_t i = this->step_index();
        const auto den = den_.v();
        this->load_step();
        co_await this->denoise(x, st.s, den);
        for (std::size_t b = 0; b < st.batch; ++b) {
            st.c0[b] = 1.0 / st.s[b];
            st.c1[b] = -1.0 / st.s[b];
        }
        lincomb(d(0), per_sample(st.c0), x, per_sample(st.c1), den);  // d_i = (x − D)/σ_i
        const std::size_t q = std::min(i + 1, opt_.order);
        for (std::size_t j = 0; j < q; ++j)
            for (std::size_t b = 0; b < st.batch; ++b) c_[j][b] = lms_coefficient(grid, grid.shared() ? 0 : b, q, i, j);
        switch (q) {
            case 1: lincomb(x, 1.0, x, per_sample(c_[0]), d(0)); break;
            case 2: lincomb(x, 1.0, x, per_sample(c_[0]), d(0), per_sample(c_[1]), d(1)); break;
            case 3: lincomb(x, 1.0, x, per_sample(c_[0]), d(0), per_sample(c_[1]), d(1), per_sample(c_[2]), d(2)); break;
            default:
                lincomb(x, 1.0, x, per_sample(c_[0]), d(0), per_sample(c_[1]), d(1), per_sample(c_[2]), d(2),
                        per_sample(c_[3]), d(3));
        }
        this->report(st.s, den);
    }
    lms_options opt_;
    typename detail::sigma_state<T, S>::buffer den_ = this->st.make_buffer();
    std::vector<typename detail::sigma_state<T, S>::buffer> ring_;  // d_i, d_{i−1}, … in slots i mod order
    std::array<std::vector<double>, 4> c_;                       // c_{ij} per sample
};

// The one-call form: x enters as σ_0·z and leaves as the sample.
template <class Model, class X, class Noise = no_noise, class Obs = no_observer>
void sample_lms(Model& m, X&& x, const time_grid& grid, const lms_options& opt = {}, Noise&& noise = no_noise{},
                Obs&& obs = {}) {
    static_assert(detail::check_sampler_arguments<X, Noise>());
    lms_stepper<detail::sampler_value_t<X>, Noise&, detail::sampler_space_v<X>> s(shape_of(x), grid, opt, noise);
    run(s, m, std::forward<X>(x), obs);
}

}  // namespace diffuse
