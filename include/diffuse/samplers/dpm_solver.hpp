#pragma once
// DPM-Solver++ samplers in σ-space (Lu et al. 2022, "DPM-Solver++: Fast Solver for Guided Sampling of
// Diffusion Probabilistic Models", arXiv:2211.01095), as k-diffusion and diffusers run them.
//
// With α = 1 the data-prediction ODE solution is exact in the half log-SNR λ = −log σ (Lu et al. eq. 9):
//     x(λ_t) = (σ_t/σ_s)·x(λ_s) + σ_t ∫ e^{λ} x̂₀(λ) dλ,
// so a step of size h = λ_t − λ_s with x₀ held at D gives x_t = (σ_t/σ_s)x_s − (e^{−h} − 1)·D (the DDIM step).
// The solvers differ in how they approximate x̂₀ over the step, and the SDE variants in the noise they add
// (the DPM-Solver++ SDE of Lu et al. sec. 4 / Gonzalez et al. 2023 ("SEEDS") with weight η):
//
//   sample_dpmpp_2m            multistep, 2nd order (Lu et al. Algorithm 2)
//   sample_dpmpp_2s_ancestral  singlestep 2nd order (Algorithm 1, r = 1/2) to σ_down, then ancestral noise
//   sample_dpmpp_sde           singlestep 2nd order with noise in both stages (k-diffusion's sample_dpmpp_sde)
//   sample_dpmpp_2m_sde        multistep 2nd order SDE, midpoint or Heun correction
//   sample_dpmpp_3m_sde        multistep 3rd order SDE
//
// The SDE samplers take their noise through the noise source with the σ interval of each draw, so a
// Brownian tree (samplers/brownian.hpp) gives noise that is coherent across step sizes; any other source
// (counter_noise, recorded_noise) gives independent normals per draw.
// Into σ = 0 every sampler takes the first-order step, which lands exactly on D.
//
// Each sampler is a stepper (samplers/stepper.hpp: dpmpp_2m_stepper, dpmpp_2s_ancestral_stepper,
// dpmpp_sde_stepper, dpmpp_2m_sde_stepper, dpmpp_3m_sde_stepper) holding the multistep history (the previous
// D's and step sizes) and the noise draw counter, and a one-call sample_* over it. sample_dpmpp_2m is
// deterministic: its noise slot takes no_noise.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "diffuse/core/elementwise.hpp"
#include "diffuse/samplers/grid.hpp"
#include "diffuse/samplers/noise_source.hpp"
#include "diffuse/samplers/observer.hpp"
#include "diffuse/samplers/sigma_common.hpp"

namespace diffuse {

// How a 2nd-order multistep solver uses the previous x₀ (diffusers' solver_type; k-diffusion's 2M is midpoint).
enum class dpm_solver_type { midpoint, heun };

[[nodiscard]] inline dpm_solver_type parse_dpm_solver_type(std::string_view name) {
    if (name == "midpoint") return dpm_solver_type::midpoint;
    if (name == "heun") return dpm_solver_type::heun;
    detail::require(false, "parse_dpm_solver_type", "solver_type", name, "{midpoint, heun}");
    return dpm_solver_type::midpoint;
}

// diffusers' DPMSolverMultistepScheduler rules for the last step (which is first order whenever it ends
// at σ = 0): euler_at_final makes it first order always, lower_order_final when there are fewer than 15
// steps. k-diffusion has neither rule: set lower_order_final = false for its behaviour with σ_N > 0.
struct dpmpp_2m_options {
    dpm_solver_type solver_type = dpm_solver_type::midpoint;
    bool lower_order_final = true;
    bool euler_at_final = false;
};

struct dpmpp_sde_options {
    double eta = 1.0;      // weight of the stochastic part (0: the ODE solver)
    double s_noise = 1.0;  // scale of the injected noise
    double r = 0.5;        // sample_dpmpp_sde only: relative position of the intermediate point in λ
};

struct dpmpp_2m_sde_options {
    double eta = 1.0;
    double s_noise = 1.0;
    dpm_solver_type solver_type = dpm_solver_type::midpoint;
    bool lower_order_final = true;
    bool euler_at_final = false;
};

struct dpmpp_3m_sde_options {
    double eta = 1.0;
    double s_noise = 1.0;
};

namespace detail {

inline void check_eta_noise(double eta, double s_noise, const char* where) {
    require(eta >= 0 && std::isfinite(eta), where, "eta", eta, "[0, inf)");
    require(s_noise >= 0 && std::isfinite(s_noise), where, "s_noise", s_noise, "[0, inf)");
}

// Whether the multistep step i of N must be first order under diffusers' final-step rules.
inline bool lower_order_last(std::size_t i, std::size_t steps, bool lower_order_final, bool euler_at_final) {
    return i + 1 == steps && (euler_at_final || (lower_order_final && steps < 15));
}

// The per-sample coefficients of a DPM-Solver++(2M) step from σ_i to σ_{i+1}, ODE (η = 0, Lu et al. 2022,
// Algorithm 2) or SDE (η > 0, k-diffusion's sample_dpmpp_2m_sde), with h = λ_{i+1} − λ_i = log(σ_i/σ_{i+1}),
// ηh = η·h, r = h_{i−1}/h:
//   x ← (σ_{i+1}/σ_i)e^{−ηh}·x + (1 − e^{−h−ηh})·D_i + w·(D_i − D_{i−1}) + s_noise·σ_{i+1}·√(1 − e^{−2ηh})·z
//   w = ½(1 − e^{−h−ηh})/r                      (midpoint: D' = D_i + (D_i − D_{i−1})/(2r))
//   w = ((1 − e^{−h−ηh})/(−h−ηh) + 1)/r         (heun, diffusers' solver_type "heun")
// w = 0 when !second_order (the first step, a final step made first order). Into σ = 0: x = D_i.
// Writes st.c0 (x), st.c1 (D_i), st.c2 (D_{i−1}), st.c4 (z); h_last holds h_{i−1} and becomes h_i.
template <class T, memory_space S>
void dpmpp_2m_coefficients(sigma_state<T, S>& st, std::vector<double>& h_last, bool second_order, double eta,
                           double s_noise, dpm_solver_type solver_type) {
    for (std::size_t b = 0; b < st.batch; ++b) {
        const double s = st.s[b], sn = st.s_next[b];
        st.c2[b] = st.c4[b] = 0.0;
        if (sn == 0) {  // x = D
            st.c0[b] = 0.0, st.c1[b] = 1.0;
            continue;
        }
        const double h = std::log(s / sn), eh = eta * h, em = -std::expm1(-h - eh);  // 1 − e^{−h−ηh}
        st.c0[b] = sn / s * std::exp(-eh);
        st.c1[b] = em;
        if (second_order) {
            const double r = h_last[b] / h;
            const double w = solver_type == dpm_solver_type::midpoint ? 0.5 * em / r : (em / (-h - eh) + 1.0) / r;
            st.c1[b] += w;
            st.c2[b] = -w;
        }
        if (eta != 0) st.c4[b] = s_noise * sn * std::sqrt(-std::expm1(-2.0 * eh));
        h_last[b] = h;
    }
}

// The 2M samplers' history: D_i and D_{i−1} in two buffers that swap roles after each step, and h_{i−1}.
template <class T, memory_space S = memory_space::host>
struct dpmpp_2m_history {
    explicit dpmpp_2m_history(const sigma_state<T, S>& st) : den{st.make_buffer(), st.make_buffer()}, h_last(st.batch) {}
    [[nodiscard]] tensor_view<T, S> current() noexcept { return den[newest].v(); }
    [[nodiscard]] tensor_view<T, S> previous() noexcept { return den[1 - newest].v(); }
    void advance() noexcept { newest = 1 - newest; }  // D_i becomes the next step's D_{i−1}

    std::array<typename sigma_state<T, S>::buffer, 2> den;
    std::vector<double> h_last;
    std::size_t newest = 0;
};

}  // namespace detail

// DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2): with h_i = λ_{i+1} − λ_i and r = h_{i−1}/h_i,
//   D' = (1 + 1/(2r))·D_i − 1/(2r)·D_{i−1}            (midpoint; heun: see detail::dpmpp_2m_coefficients)
//   x_{i+1} = (σ_{i+1}/σ_i)·x_i − (e^{−h_i} − 1)·D'
// First order (D' = D_i) on the first step and into σ = 0. Deterministic: Noise is only the slot.
template <class T, class Noise = no_noise, memory_space S = memory_space::host>
class dpmpp_2m_stepper : public detail::sigma_stepper<dpmpp_2m_stepper<T, Noise, S>, T, Noise, S> {
    using base = detail::sigma_stepper<dpmpp_2m_stepper<T, Noise, S>, T, Noise, S>;
    friend class stepper<dpmpp_2m_stepper<T, Noise, S>, T, S>;

public:
    dpmpp_2m_stepper(batch_shape shape, const time_grid& grid, const dpmpp_2m_options& opt = {}, Noise noise = {})
        : base(shape, grid, std::forward<Noise>(noise), "sample_dpmpp_2m"), opt_(opt) {}

private:
    detail::step_task run_step(tensor_view<T, S> x) {
        auto& st = this->st;
        const std::size_t i = this->step_index();
        const auto den = hist_.current(), old = hist_.previous();
        this->load_step();
        co_await this->denoise(x, st.s, den);
        const bool second = i > 0 && !detail::lower_order_last(i, st.steps, opt_.lower_order_final, opt_.euler_at_final);
        detail::dpmpp_2m_coefficients(st, hist_.h_last, second, 0.0, 0.0, opt_.solver_type);
        lincomb(x, per_sample(st.c0), x, per_sample(st.c1), den, per_sample(st.c2), old);
        this->report(st.s, den);
        hist_.advance();
    }
    dpmpp_2m_options opt_;
    detail::dpmpp_2m_history<T, S> hist_{this->st};
};

// DPM-Solver++(2S) ancestral (k-diffusion's sample_dpmpp_2s_ancestral): (σ_down, σ_up) =
// ancestral_step(σ_i, σ_{i+1}, η); a singlestep DPM-Solver++(2S) step (Lu et al. Algorithm 1, r = 1/2) from
// σ_i to σ_down:  λ_s = λ_i + h/2,  u = (σ_s/σ_i)x − (e^{−h/2} − 1)D,  x ← (σ_down/σ_i)x − (e^{−h} − 1)·D(u; σ_s);
// then x ← x + s_noise·σ_up·z where σ_{i+1} > 0. Into σ_down = 0 the Euler step (x = D). Options: eta, s_noise
// (r is not used: the intermediate point is the midpoint).
template <class T, class Noise = counter_noise, memory_space S = memory_space::host>
class dpmpp_2s_ancestral_stepper : public detail::sigma_stepper<dpmpp_2s_ancestral_stepper<T, Noise, S>, T, Noise, S> {
    using base = detail::sigma_stepper<dpmpp_2s_ancestral_stepper<T, Noise, S>, T, Noise, S>;
    friend class stepper<dpmpp_2s_ancestral_stepper<T, Noise, S>, T, S>;

public:
    dpmpp_2s_ancestral_stepper(batch_shape shape, const time_grid& grid, const dpmpp_sde_options& opt = {},
                               Noise noise = {})
        : base(shape, grid, std::forward<Noise>(noise), "sample_dpmpp_2s_ancestral"), opt_(opt) {
        detail::check_eta_noise(opt_.eta, opt_.s_noise, this->where());
    }

private:
    detail::step_task run_step(tensor_view<T, S> x) {
        auto& st = this->st;
        const auto den = den_.v(), den2 = den2_.v(), u = u_.v();
        this->load_step();
        co_await this->denoise(x, st.s, den);
        bool second = false;
        for (std::size_t b = 0; b < st.batch; ++b) {
            const double s = st.s[b];
            const auto a = ancestral_step(s, st.s_next[b], opt_.eta);
            st.c4[b] = st.s_next[b] > 0 ? opt_.s_noise * a.up : 0.0;
            if (a.down == 0) {  // Euler into 0: x = D
                st.c0[b] = 0.0, st.c1[b] = 1.0, st.c2[b] = 0.0, st.tmp[b] = s;
                st.c3[b] = 1.0, st.hat[b] = 0.0;  // u unused
                continue;
            }
            second = true;
            const double t = -std::log(s), h = -std::log(a.down) - t, sm = std::exp(-(t + 0.5 * h));
            st.tmp[b] = sm;                     // σ_s, the intermediate point
            st.c3[b] = sm / s;                  // u = (σ_s/σ_i)·x − (e^{−h/2} − 1)·D
            st.hat[b] = -std::expm1(-0.5 * h);
            st.c0[b] = a.down / s;              // x ← (σ_down/σ_i)·x − (e^{−h} − 1)·D₂
            st.c1[b] = 0.0;
            st.c2[b] = -std::expm1(-h);
        }
        if (second) {
            lincomb(u, per_sample(st.c3), x, per_sample(st.hat), den);
            co_await this->denoise(u, st.tmp, den2);
            lincomb(x, per_sample(st.c0), x, per_sample(st.c1), den, per_sample(st.c2), den2);
        } else {
            lincomb(x, per_sample(st.c0), x, per_sample(st.c1), den);
        }
        detail::add_noise(this->noise, x, eps_.v(), this->draw, st.s, st.s_next, st.c4);
        this->report(st.s, den);
    }
    dpmpp_sde_options opt_;
    typename detail::sigma_state<T, S>::buffer den_ = this->st.make_buffer(), den2_ = this->st.make_buffer(),
                                            u_ = this->st.make_buffer(), eps_ = this->st.make_buffer();
};

// DPM-Solver++ SDE (k-diffusion's sample_dpmpp_sde): a 2-stage singlestep solver with the intermediate
// point at λ_s = λ_i + r·h, each stage an ancestral DPM-Solver++(1) step with noise:
//   stage 1: (σ_d, σ_u) = ancestral_step(σ_i, σ_s, η);  u = (σ_d/σ_i)x − (e^{−(λ_d−λ_i)} − 1)D + s_noise·σ_u·z₁
//   stage 2: (σ_d, σ_u) = ancestral_step(σ_i, σ_{i+1}, η);  D' = (1 − 1/(2r))D + 1/(2r)·D(u; σ_s);
//            x ← (σ_d/σ_i)x − (e^{−(λ_d−λ_i)} − 1)D' + s_noise·σ_u·z₂
// z₁ is drawn for the interval (σ_i, σ_s), z₂ for (σ_i, σ_{i+1}). Into σ = 0 the Euler step (x = D).
template <class T, class Noise = counter_noise, memory_space S = memory_space::host>
class dpmpp_sde_stepper : public detail::sigma_stepper<dpmpp_sde_stepper<T, Noise, S>, T, Noise, S> {
    using base = detail::sigma_stepper<dpmpp_sde_stepper<T, Noise, S>, T, Noise, S>;
    friend class stepper<dpmpp_sde_stepper<T, Noise, S>, T, S>;

public:
    dpmpp_sde_stepper(batch_shape shape, const time_grid& grid, const dpmpp_sde_options& opt = {}, Noise noise = {})
        : base(shape, grid, std::forward<Noise>(noise), "sample_dpmpp_sde"), opt_(opt), su1_(shape.batch),
          su2_(shape.batch), cu0_(shape.batch), cu1_(shape.batch) {
        detail::check_eta_noise(opt_.eta, opt_.s_noise, this->where());
        detail::require(opt_.r > 0 && opt_.r <= 1, this->where(), "r", opt_.r, "(0, 1]");
    }

private:
    detail::step_task run_step(tensor_view<T, S> x) {
        auto& st = this->st;
        const auto den = den_.v(), den2 = den2_.v(), u = u_.v(), eps = eps_.v();
        const double fac = 1.0 / (2.0 * opt_.r);
        this->load_step();
        co_await this->denoise(x, st.s, den);
        bool second = false;
        for (std::size_t b = 0; b < st.batch; ++b) {
            const double s = st.s[b], sn = st.s_next[b];
            if (sn == 0) {
                st.c0[b] = 0.0, st.c1[b] = 1.0, st.c2[b] = 0.0, su1_[b] = su2_[b] = 0.0;
                cu0_[b] = 1.0, cu1_[b] = 0.0, st.tmp[b] = s;
                continue;
            }
            second = true;
            const double t = -std::log(s), h = -std::log(sn) - t;
            const double sm = std::exp(-(t + h * opt_.r));
            st.tmp[b] = sm;
            const auto a1 = ancestral_step(s, sm, opt_.eta);
            cu0_[b] = a1.down / s;
            cu1_[b] = -std::expm1(t + std::log(a1.down));  // −(e^{λ_i − λ_d} − 1), λ = −log σ
            su1_[b] = opt_.s_noise * a1.up;
            const auto a2 = ancestral_step(s, sn, opt_.eta);
            const double e2 = -std::expm1(t + std::log(a2.down));
            st.c0[b] = a2.down / s;
            st.c1[b] = (1.0 - fac) * e2;
            st.c2[b] = fac * e2;
            su2_[b] = opt_.s_noise * a2.up;
        }
        if (second) {
            lincomb(u, per_sample(cu0_), x, per_sample(cu1_), den);  // stage 1
            detail::add_noise(this->noise, u, eps, this->draw, st.s, st.tmp, su1_);
            co_await this->denoise(u, st.tmp, den2);
            lincomb(x, per_sample(st.c0), x, per_sample(st.c1), den, per_sample(st.c2), den2);  // stage 2
            detail::add_noise(this->noise, x, eps, this->draw, st.s, st.s_next, su2_);
        } else {
            lincomb(x, per_sample(st.c0), x, per_sample(st.c1), den);
        }
        this->report(st.s, den);
    }
    dpmpp_sde_options opt_;
    std::vector<double> su1_, su2_, cu0_, cu1_;
    typename detail::sigma_state<T, S>::buffer den_ = this->st.make_buffer(), den2_ = this->st.make_buffer(),
                                            u_ = this->st.make_buffer(), eps_ = this->st.make_buffer();
};

// DPM-Solver++(2M) SDE (k-diffusion's sample_dpmpp_2m_sde; diffusers' algorithm_type "sde-dpmsolver++"):
// with h = λ_{i+1} − λ_i, ηh = η·h and r = h_{i−1}/h,
//   x ← (σ_{i+1}/σ_i)e^{−ηh}·x + (1 − e^{−h−ηh})·D
//       + [midpoint] ½(1 − e^{−h−ηh})·(D − D_{i−1})/r   or [heun] ((1 − e^{−h−ηh})/(−h−ηh) + 1)·(D − D_{i−1})/r
//       + s_noise·σ_{i+1}·√(1 − e^{−2ηh})·z
// Into σ = 0: x = D.
template <class T, class Noise = counter_noise, memory_space S = memory_space::host>
class dpmpp_2m_sde_stepper : public detail::sigma_stepper<dpmpp_2m_sde_stepper<T, Noise, S>, T, Noise, S> {
    using base = detail::sigma_stepper<dpmpp_2m_sde_stepper<T, Noise, S>, T, Noise, S>;
    friend class stepper<dpmpp_2m_sde_stepper<T, Noise, S>, T, S>;

public:
    dpmpp_2m_sde_stepper(batch_shape shape, const time_grid& grid, const dpmpp_2m_sde_options& opt = {}, Noise noise = {})
        : base(shape, grid, std::forward<Noise>(noise), "sample_dpmpp_2m_sde"), opt_(opt) {
        detail::check_eta_noise(opt_.eta, opt_.s_noise, this->where());
    }

private:
    detail::step_task run_step(tensor_view<T, S> x) {
        auto& st = this->st;
        const std::size_t i = this->step_index();
        const auto den = hist_.current(), old = hist_.previous();
        this->load_step();
        co_await this->denoise(x, st.s, den);
        const bool second = i > 0 && !detail::lower_order_last(i, st.steps, opt_.lower_order_final, opt_.euler_at_final);
        detail::dpmpp_2m_coefficients(st, hist_.h_last, second, opt_.eta, opt_.s_noise, opt_.solver_type);
        detail::update_with_noise(this->noise, x, eps_.v(), this->draw, st.s, st.s_next, st.c4, per_sample(st.c0), x,
                                  per_sample(st.c1), den, per_sample(st.c2), old);
        this->report(st.s, den);
        hist_.advance();
    }
    dpmpp_2m_sde_options opt_;
    detail::dpmpp_2m_history<T, S> hist_{this->st};
    typename detail::sigma_state<T, S>::buffer eps_ = this->st.make_buffer();
};

// DPM-Solver++(3M) SDE (k-diffusion's sample_dpmpp_3m_sde): with h_η = (1 + η)h, r₀ = h_{i−1}/h,
// r₁ = h_{i−2}/h, the divided differences d₁,₀ = (D_i − D_{i−1})/r₀, d₁,₁ = (D_{i−1} − D_{i−2})/r₁,
// d₁ = d₁,₀ + (d₁,₀ − d₁,₁)·r₀/(r₀ + r₁), d₂ = (d₁,₀ − d₁,₁)/(r₀ + r₁), φ₂ = (e^{−h_η} − 1)/h_η + 1,
// φ₃ = φ₂/h_η − ½:
//   x ← e^{−h_η}x + (1 − e^{−h_η})D_i + φ₂d₁ − φ₃d₂ + s_noise·σ_{i+1}·√(1 − e^{−2ηh})·z
// (second order with d = d₁,₀ on step 1, first order on step 0). Into σ = 0: x = D.
template <class T, class Noise = counter_noise, memory_space S = memory_space::host>
class dpmpp_3m_sde_stepper : public detail::sigma_stepper<dpmpp_3m_sde_stepper<T, Noise, S>, T, Noise, S> {
    using base = detail::sigma_stepper<dpmpp_3m_sde_stepper<T, Noise, S>, T, Noise, S>;
    friend class stepper<dpmpp_3m_sde_stepper<T, Noise, S>, T, S>;

public:
    dpmpp_3m_sde_stepper(batch_shape shape, const time_grid& grid, const dpmpp_3m_sde_options& opt = {}, Noise noise = {})
        : base(shape, grid, std::forward<Noise>(noise), "sample_dpmpp_3m_sde"), opt_(opt), h1_(shape.batch),
          h2_(shape.batch) {
        detail::check_eta_noise(opt_.eta, opt_.s_noise, this->where());
    }

private:
    // D_{i−k}: the history buffers in rotation, D_i in slot newest_.
    tensor_view<T, S> d(std::size_t k) noexcept { return den_[(newest_ + k) % 3].v(); }

    detail::step_task run_step(tensor_view<T, S> x) {
        auto& st = this->st;
        const std::size_t i = this->step_index();
        const auto d0 = d(0), d1 = d(1), d2 = d(2);
        this->load_step();
        co_await this->denoise(x, st.s, d0);
        for (std::size_t b = 0; b < st.batch; ++b) {
            const double s = st.s[b], sn = st.s_next[b];
            st.c2[b] = st.c3[b] = st.c4[b] = 0.0;
            if (sn == 0) {
                st.c0[b] = 0.0, st.c1[b] = 1.0;
                continue;
            }
            const double h = std::log(s / sn), he = h * (opt_.eta + 1.0);
            st.c0[b] = std::exp(-he);
            st.c1[b] = -std::expm1(-he);
            const double phi2 = std::expm1(-he) / he + 1.0, phi3 = phi2 / he - 0.5;
            if (i >= 2) {
                const double r0 = h1_[b] / h, r1 = h2_[b] / h, k = r0 / (r0 + r1);
                const double A = phi2 * (1.0 + k) - phi3 / (r0 + r1);  // weight of d₁,₀
                const double Bw = -phi2 * k + phi3 / (r0 + r1);        // weight of d₁,₁
                st.c1[b] += A / r0;
                st.c2[b] = -A / r0 + Bw / r1;
                st.c3[b] = -Bw / r1;
            } else if (i == 1) {
                const double r = h1_[b] / h;
                st.c1[b] += phi2 / r;
                st.c2[b] = -phi2 / r;
            }
            if (opt_.eta != 0) st.c4[b] = opt_.s_noise * sn * std::sqrt(-std::expm1(-2.0 * h * opt_.eta));
            h2_[b] = h1_[b];
            h1_[b] = h;
        }
        detail::update_with_noise(this->noise, x, eps_.v(), this->draw, st.s, st.s_next, st.c4, per_sample(st.c0), x,
                                  per_sample(st.c1), d0, per_sample(st.c2), d1, per_sample(st.c3), d2);
        this->report(st.s, d0);
        newest_ = (newest_ + 2) % 3;  // the oldest slot holds the next D_i; D_i becomes D_{i−1}, D_{i−1} D_{i−2}
    }
    dpmpp_3m_sde_options opt_;
    std::vector<double> h1_, h2_;  // h_{i−1}, h_{i−2}
    std::array<typename detail::sigma_state<T, S>::buffer, 3> den_{this->st.make_buffer(), this->st.make_buffer(),
                                                                this->st.make_buffer()};
    std::size_t newest_ = 0;
    typename detail::sigma_state<T, S>::buffer eps_ = this->st.make_buffer();
};

// The one-call forms: x enters as σ_0·z and leaves as the sample. A Brownian tree (samplers/brownian.hpp) is
// stateful and is used through the reference the call is given.
template <class Model, class X, class Noise = no_noise, class Obs = no_observer>
void sample_dpmpp_2m(Model& m, X&& x, const time_grid& grid, const dpmpp_2m_options& opt = {}, Noise&& noise = no_noise{},
                     Obs&& obs = {}) {
    static_assert(detail::check_sampler_arguments<X, Noise>());
    dpmpp_2m_stepper<detail::sampler_value_t<X>, Noise&, detail::sampler_space_v<X>> s(shape_of(x), grid, opt, noise);
    run(s, m, std::forward<X>(x), obs);
}
template <class Model, class X, class Noise = counter_noise, class Obs = no_observer>
void sample_dpmpp_2s_ancestral(Model& m, X&& x, const time_grid& grid, const dpmpp_sde_options& opt = {},
                               Noise&& noise = {}, Obs&& obs = {}) {
    static_assert(detail::check_sampler_arguments<X, Noise>());
    dpmpp_2s_ancestral_stepper<detail::sampler_value_t<X>, Noise&, detail::sampler_space_v<X>> s(shape_of(x), grid, opt, noise);
    run(s, m, std::forward<X>(x), obs);
}
template <class Model, class X, class Noise = counter_noise, class Obs = no_observer>
void sample_dpmpp_sde(Model& m, X&& x, const time_grid& grid, const dpmpp_sde_options& opt = {}, Noise&& noise = {},
                      Obs&& obs = {}) {
    static_assert(detail::check_sampler_arguments<X, Noise>());
    dpmpp_sde_stepper<detail::sampler_value_t<X>, Noise&, detail::sampler_space_v<X>> s(shape_of(x), grid, opt, noise);
    run(s, m, std::forward<X>(x), obs);
}
template <class Model, class X, class Noise = counter_noise, class Obs = no_observer>
void sample_dpmpp_2m_sde(Model& m, X&& x, const time_grid& grid, const dpmpp_2m_sde_options& opt = {},
                         Noise&& noise = {}, Obs&& obs = {}) {
    static_assert(detail::check_sampler_arguments<X, Noise>());
    dpmpp_2m_sde_stepper<detail::sampler_value_t<X>, Noise&, detail::sampler_space_v<X>> s(shape_of(x), grid, opt, noise);
    run(s, m, std::forward<X>(x), obs);
}
template <class Model, class X, class Noise = counter_noise, class Obs = no_observer>
void sample_dpmpp_3m_sde(Model& m, X&& x, const time_grid& grid, const dpmpp_3m_sde_options& opt = {},
                         Noise&& noise = {}, Obs&& obs = {}) {
    static_assert(detail::check_sampler_arguments<X, Noise>());
    dpmpp_3m_sde_stepper<detail::sampler_value_t<X>, Noise&, detail::sampler_space_v<X>> s(shape_of(x), grid, opt, noise);
    run(s, m, std::forward<X>(x), obs);
}

}  // namespace diffuse
