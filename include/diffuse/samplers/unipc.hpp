#pragma once
// UniPC: the unified predictor–corrector of Zhao et al. 2023 ("UniPC: A Unified Predictor-Corrector
// Framework for Fast Sampling of Diffusion Models", arXiv:2302.04867), data-prediction form, in σ-space
// (α = 1, λ = −log σ), as diffusers' UniPCMultistepScheduler runs it (predict_x0 = True).
//
// With h = λ_{i+1} − λ_i, φ₁ = e^{−h} − 1 and B(h) = −h ("bh1") or e^{−h} − 1 ("bh2") (paper eq. 9):
//   UniP-p (Algorithm 2):  x_{i+1} = (σ_{i+1}/σ_i)·x_i − φ₁·m_i − B(h)·Σ_{k<p} ρ_k·D_k,
//       r_k = (λ_{i−k} − λ_i)/h,  D_k = (m_{i−k} − m_i)/r_k,  ρ solves R ρ = g over the first p−1 rows
//       (ρ = ½ for p = 2), R_{jk} = r_k^{j}, g_j = h·φ_{j+1}(h)·(j+1)!/B(h) (paper eq. 10).
//   UniC-p (Algorithm 1), applied to x_{i+1} once the model has seen it, with the same step from σ_i:
//       x^c_{i+1} = (σ_{i+1}/σ_i)·x_i − φ₁·m_i − B(h)·(Σ_k ρ^c_k·D_k + ρ^c_p·(m_{i+1} − m_i)),
//       ρ^c solving the full p×p system (ρ^c = ½ for p = 1).
// One model evaluation per step: the corrector reuses m_{i+1} for the next predictor.
// Orders warm up (p ≤ number of outputs seen); with lower_order_final the last steps drop to the steps left.
// unipc_stepper (samplers/stepper.hpp) holds the model outputs and the corrector's state; sample_unipc is the
// one-call form over it.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <string_view>
#include <vector>

#include "diffuse/core/elementwise.hpp"
#include "diffuse/samplers/grid.hpp"
#include "diffuse/samplers/noise_source.hpp"
#include "diffuse/samplers/observer.hpp"
#include "diffuse/samplers/sigma_common.hpp"

namespace diffuse {

enum class unipc_variant { bh1, bh2 };

struct unipc_options {
    std::size_t solver_order = 2;                 // 1 … 3
    unipc_variant solver_type = unipc_variant::bh2;
    bool lower_order_final = true;
    std::vector<std::size_t> disable_corrector{};  // steps after which the corrector is skipped
};

namespace detail {

// Coefficients of one UniP (corrector = false) or UniC (corrector = true) step of order p from σ_i to σ_t
// with previous noise levels prev[k] = σ_{i−1−k}. Result: x_new = a·x_i + c[0]·m_i + Σ_k c[k+1]·m_{i−1−k}
// (+ cm·m_t for the corrector).
struct unipc_coefs {
    double a = 0, cm = 0;
    std::array<double, 4> c{};
};

inline unipc_coefs unipc_step(double sigma_i, double sigma_t, const double* prev, std::size_t p, unipc_variant v,
                              bool corrector) {
    unipc_coefs out;
    if (sigma_t == 0) {  // into σ = 0 the step is x = m_i (h = ∞)
        out.c[0] = 1.0;
        return out;
    }
    const double lam_i = -std::log(sigma_i), h = -std::log(sigma_t) - lam_i, hh = -h;
    const double phi1 = std::expm1(hh);
    const double Bh = v == unipc_variant::bh1 ? hh : std::expm1(hh);
    out.a = sigma_t / sigma_i;
    out.c[0] = -phi1;
    std::array<double, 4> r{}, g{};
    for (std::size_t k = 0; k + 1 < p; ++k) r[k] = (-std::log(prev[k]) - lam_i) / h;
    r[p - 1] = 1.0;
    double hphik = phi1 / hh - 1.0, fact = 1.0;
    for (std::size_t j = 0; j < p; ++j) {
        g[j] = hphik * fact / Bh;
        fact *= double(j + 2);
        hphik = hphik / hh - 1.0 / fact;
    }
    // Solve R ρ = g (n × n, R_{jk} = r_k^j) by Gaussian elimination with partial pivoting.
    const std::size_t n = corrector ? p : p - 1;
    std::array<double, 3> rho{};
    if (n == 1 && ((corrector && p == 1) || (!corrector && p == 2))) {
        rho[0] = 0.5;
    } else if (n > 0) {
        double M[3][4];
        for (std::size_t j = 0; j < n; ++j) {
            for (std::size_t k = 0; k < n; ++k) M[j][k] = std::pow(r[k], double(j));
            M[j][n] = g[j];
        }
        for (std::size_t col = 0; col < n; ++col) {
            std::size_t piv = col;
            for (std::size_t j = col + 1; j < n; ++j)
                if (std::abs(M[j][col]) > std::abs(M[piv][col])) piv = j;
            for (std::size_t k = 0; k <= n; ++k) std::swap(M[col][k], M[piv][k]);
            for (std::size_t j = col + 1; j < n; ++j) {
                const double f = M[j][col] / M[col][col];
                for (std::size_t k = col; k <= n; ++k) M[j][k] -= f * M[col][k];
            }
        }
        for (std::size_t j = n; j-- > 0;) {
            double s = M[j][n];
            for (std::size_t k = j + 1; k < n; ++k) s -= M[j][k] * rho[k];
            rho[j] = s / M[j][j];
        }
    }
    // −B(h)·Σ_k ρ_k (m_{i−1−k} − m_i)/r_k  and, for the corrector, −B(h)·ρ_last·(m_t − m_i)
    for (std::size_t k = 0; k + 1 < p; ++k) {
        out.c[k + 1] = -Bh * rho[k] / r[k];
        out.c[0] += Bh * rho[k] / r[k];
    }
    if (corrector) {
        out.cm = -Bh * rho[p - 1];
        out.c[0] += Bh * rho[p - 1];
    }
    return out;
}

}  // namespace detail

// UniPC as a stepper. Step i: m_i = D(x_i; σ_i); unless disabled, UniC corrects x_i with it (the corrector of
// step i − 1 needs step i's evaluation, so it runs here, on the x the caller holds); then UniP predicts x_{i+1}.
// The stepper keeps m_{i−1}, …, m_{i−order} (a ring of order + 1 buffers, m_i in slot i mod (order + 1)), x_i
// before the predictor (what the next corrector starts from) and the predictor's order. Deterministic: Noise is
// only the slot.
template <class T, class Noise = no_noise, memory_space S = memory_space::host>
class unipc_stepper : public detail::sigma_stepper<unipc_stepper<T, Noise, S>, T, Noise, S> {
    using base = detail::sigma_stepper<unipc_stepper<T, Noise, S>, T, Noise, S>;
    friend class stepper<unipc_stepper<T, Noise, S>, T, S>;

public:
    unipc_stepper(batch_shape shape, const time_grid& grid, const unipc_options& opt = {}, Noise noise = {})
        : base(shape, grid, std::forward<Noise>(noise), "sample_unipc"), opt_(opt) {
        detail::require(opt_.solver_order >= 1 && opt_.solver_order <= 3, this->where(), "solver_order",
                        opt_.solver_order, "[1, 3]");
        for (std::size_t k = 0; k <= opt_.solver_order; ++k) ring_.push_back(this->st.make_buffer());
        for (auto& v : c_) v.assign(shape.batch, 0.0);
    }

private:
    // m_{i−back} of the current step i.
    tensor_view<T, S> model_output(std::size_t back) noexcept {
        const std::size_t R = ring_.size();
        return ring_[(this->step_index() + R - back % R) % R].v();
    }

    detail::step_task run_step(tensor_view<T, S> x) {
        auto& st = this->st;
        const auto& grid = this->grid();
        const std::size_t i = this->step_index(), B = st.batch;
        const auto m0 = model_output(0), m1 = model_output(1), m2 = model_output(2), m3 = model_output(3);
        std::array<double, 3> prev{};  // σ_{i−1−k} of sample b (the predictor) or σ_{i−2−k} (the corrector)
        this->load_step();
        co_await this->denoise(x, st.s, m0);
        const bool correct = i > 0 && std::find(opt_.disable_corrector.begin(), opt_.disable_corrector.end(), i - 1) ==
                                          opt_.disable_corrector.end();
        if (correct) {  // UniC of order order_prev_ on the step σ_{i−1} → σ_i just taken
            for (std::size_t b = 0; b < B; ++b) {
                const std::size_t row = grid.shared() ? 0 : b;
                for (std::size_t k = 0; k + 1 < order_prev_; ++k) prev[k] = grid(i - 2 - k, row);
                const auto co = detail::unipc_step(grid(i - 1, row), st.s[b], prev.data(), order_prev_, opt_.solver_type, true);
                c_[0][b] = co.a, c_[1][b] = co.c[0], c_[2][b] = co.c[1], c_[3][b] = co.c[2], c_[4][b] = co.cm;
            }
            // x_i ← a·x_{i−1} + c·m_{i−1} + c·m_{i−2} + c·m_{i−3} + c_m·m_i
            lincomb(x, per_sample(c_[0]), last_.v(), per_sample(c_[1]), m1, per_sample(c_[2]), m2, per_sample(c_[3]), m3,
                    per_sample(c_[4]), m0);
        }
        std::size_t p = opt_.lower_order_final ? std::min(opt_.solver_order, st.steps - i) : opt_.solver_order;
        p = std::min(p, std::min(i, opt_.solver_order) + 1);  // warm-up
        lincomb(last_.v(), 1.0, x);
        for (std::size_t b = 0; b < B; ++b) {
            const std::size_t row = grid.shared() ? 0 : b;
            for (std::size_t k = 0; k + 1 < p; ++k) prev[k] = grid(i - 1 - k, row);
            const auto co = detail::unipc_step(st.s[b], st.s_next[b], prev.data(), p, opt_.solver_type, false);
            c_[0][b] = co.a, c_[1][b] = co.c[0], c_[2][b] = co.c[1], c_[3][b] = co.c[2];
        }
        // UniP: x_{i+1} = a·x_i + c·m_i + c·m_{i−1} + c·m_{i−2}
        lincomb(x, per_sample(c_[0]), x, per_sample(c_[1]), m0, per_sample(c_[2]), m1, per_sample(c_[3]), m2);
        order_prev_ = p;
        this->report(st.s, m0);
    }
    unipc_options opt_;
    std::vector<typename detail::sigma_state<T, S>::buffer> ring_;  // m_i in slot i mod (order + 1)
    typename detail::sigma_state<T, S>::buffer last_ = this->st.make_buffer();  // x_i before the predictor
    std::array<std::vector<double>, 5> c_;                                   // per-sample step coefficients
    std::size_t order_prev_ = 0;                                             // the last predictor's order
};

// The one-call form: x enters as σ_0·z and leaves as the sample.
template <class Model, class X, class Noise = no_noise, class Obs = no_observer>
void sample_unipc(Model& m, X&& x, const time_grid& grid, const unipc_options& opt = {}, Noise&& noise = no_noise{},
                  Obs&& obs = {}) {
    static_assert(detail::check_sampler_arguments<X, Noise>());
    unipc_stepper<detail::sampler_value_t<X>, Noise&, detail::sampler_space_v<X>> s(shape_of(x), grid, opt, noise);
    run(s, m, std::forward<X>(x), obs);
}

}  // namespace diffuse
