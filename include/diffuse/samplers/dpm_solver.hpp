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

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string_view>

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

}  // namespace detail

// DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2): with h_i = λ_{i+1} − λ_i and r = h_{i−1}/h_i,
//   D' = (1 + 1/(2r))·D_i − 1/(2r)·D_{i−1}            (midpoint; Heun: D_i + (e^{−h}−1 + h)/(h(e^{−h}−1))·… below)
//   x_{i+1} = (σ_{i+1}/σ_i)·x_i − (e^{−h_i} − 1)·D'
// First order (D' = D_i) on the first step and into σ = 0.
template <class Model, tensor X, class Obs = no_observer>
void sample_dpmpp_2m(Model& m, X&& x_in, const time_grid& grid, const dpmpp_2m_options& opt = {}, Obs&& obs = {}) {
    constexpr const char* where = "sample_dpmpp_2m";
    const auto x = detail::writable_view(std::forward<X>(x_in), where);
    using T = typename decltype(x)::value_type;
    detail::sigma_state<T> st(grid, x.batch, x.per_sample, where);
    auto b0 = st.make_buffer(), b1 = st.make_buffer();
    tensor_view<T> den = b0.v(), old = b1.v();
    std::vector<double> h_last(x.batch);
    for (std::size_t i = 0; i < st.steps; ++i) {
        st.load(grid, i);
        detail::denoise(m, x, st.ones, st.s, den, i, where);
        const bool low = detail::lower_order_last(i, st.steps, opt.lower_order_final, opt.euler_at_final);
        for (std::size_t b = 0; b < st.batch; ++b) {
            const double s = st.s[b], sn = st.s_next[b];
            if (sn == 0) {  // x = D
                st.c0[b] = 0.0, st.c1[b] = 1.0, st.c2[b] = 0.0;
                continue;
            }
            const double h = std::log(s / sn), em = -std::expm1(-h);  // 1 − e^{−h}
            st.c0[b] = sn / s;
            st.c1[b] = em;
            st.c2[b] = 0.0;
            if (i > 0 && !low) {
                const double r = h_last[b] / h;
                // midpoint (Lu et al. Algorithm 2): D' = D + (D − D_old)/(2r)
                // heun (diffusers' solver_type "heun"): x += ((e^{−h} − 1)/h + 1)·(D − D_old)/r
                const double w = opt.solver_type == dpm_solver_type::midpoint ? em * 0.5 / r : (-em / h + 1.0) / r;
                st.c1[b] += w;
                st.c2[b] = -w;
            }
            h_last[b] = h;
        }
        lincomb(x, per_sample(st.c0), x, per_sample(st.c1), den, per_sample(st.c2), old);
        if (detail::observe(obs, i, st.steps, st.s, x, den)) return;
        std::swap(den, old);
    }
}

// DPM-Solver++(2S) ancestral (k-diffusion's sample_dpmpp_2s_ancestral): (σ_down, σ_up) =
// ancestral_step(σ_i, σ_{i+1}, η); a singlestep DPM-Solver++(2S) step (Lu et al. Algorithm 1, r = 1/2) from
// σ_i to σ_down:  λ_s = λ_i + h/2,  u = (σ_s/σ_i)x − (e^{−h/2} − 1)D,  x ← (σ_down/σ_i)x − (e^{−h} − 1)·D(u; σ_s);
// then x ← x + s_noise·σ_up·z where σ_{i+1} > 0. Into σ_down = 0 the Euler step (x = D).
template <class Model, tensor X, class Noise = counter_noise, class Obs = no_observer>
void sample_dpmpp_2s_ancestral(Model& m, X&& x_in, const time_grid& grid, const dpmpp_sde_options& opt = {},
                               Noise&& noise = {}, Obs&& obs = {}) {
    constexpr const char* where = "sample_dpmpp_2s_ancestral";
    const auto x = detail::writable_view(std::forward<X>(x_in), where);
    using T = typename decltype(x)::value_type;
    detail::check_eta_noise(opt.eta, opt.s_noise, where);
    detail::sigma_state<T> st(grid, x.batch, x.per_sample, where);
    auto den = st.make_buffer(), den2 = st.make_buffer(), u = st.make_buffer(), eps = st.make_buffer();
    std::uint64_t draw = 0;
    for (std::size_t i = 0; i < st.steps; ++i) {
        st.load(grid, i);
        detail::denoise(m, x, st.ones, st.s, den.v(), i, where);
        bool second = false;
        for (std::size_t b = 0; b < st.batch; ++b) {
            const double s = st.s[b];
            const auto a = ancestral_step(s, st.s_next[b], opt.eta);
            st.c4[b] = st.s_next[b] > 0 ? opt.s_noise * a.up : 0.0;
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
            lincomb(u.v(), per_sample(st.c3), x, per_sample(st.hat), den.v());
            detail::denoise(m, u.v(), st.ones, st.tmp, den2.v(), i, where);
            lincomb(x, per_sample(st.c0), x, per_sample(st.c1), den.v(), per_sample(st.c2), den2.v());
        } else {
            lincomb(x, per_sample(st.c0), x, per_sample(st.c1), den.v());
        }
        detail::add_noise(noise, x, eps.v(), draw, st.s, st.s_next, st.c4);
        if (detail::observe(obs, i, st.steps, st.s, x, den.v())) return;
    }
}

// DPM-Solver++ SDE (k-diffusion's sample_dpmpp_sde): a 2-stage singlestep solver with the intermediate
// point at λ_s = λ_i + r·h, each stage an ancestral DPM-Solver++(1) step with noise:
//   stage 1: (σ_d, σ_u) = ancestral_step(σ_i, σ_s, η);  u = (σ_d/σ_i)x − (e^{−(λ_d−λ_i)} − 1)D + s_noise·σ_u·z₁
//   stage 2: (σ_d, σ_u) = ancestral_step(σ_i, σ_{i+1}, η);  D' = (1 − 1/(2r))D + 1/(2r)·D(u; σ_s);
//            x ← (σ_d/σ_i)x − (e^{−(λ_d−λ_i)} − 1)D' + s_noise·σ_u·z₂
// z₁ is drawn for the interval (σ_i, σ_s), z₂ for (σ_i, σ_{i+1}). Into σ = 0 the Euler step (x = D).
template <class Model, tensor X, class Noise = counter_noise, class Obs = no_observer>
void sample_dpmpp_sde(Model& m, X&& x_in, const time_grid& grid, const dpmpp_sde_options& opt = {}, Noise&& noise = {},
                      Obs&& obs = {}) {
    constexpr const char* where = "sample_dpmpp_sde";
    const auto x = detail::writable_view(std::forward<X>(x_in), where);
    using T = typename decltype(x)::value_type;
    detail::check_eta_noise(opt.eta, opt.s_noise, where);
    detail::require(opt.r > 0 && opt.r <= 1, where, "r", opt.r, "(0, 1]");
    detail::sigma_state<T> st(grid, x.batch, x.per_sample, where);
    auto den = st.make_buffer(), den2 = st.make_buffer(), u = st.make_buffer(), eps = st.make_buffer();
    std::vector<double> su1(x.batch), su2(x.batch), cu0(x.batch), cu1(x.batch);
    const double fac = 1.0 / (2.0 * opt.r);
    std::uint64_t draw = 0;
    for (std::size_t i = 0; i < st.steps; ++i) {
        st.load(grid, i);
        detail::denoise(m, x, st.ones, st.s, den.v(), i, where);
        bool second = false;
        for (std::size_t b = 0; b < st.batch; ++b) {
            const double s = st.s[b], sn = st.s_next[b];
            if (sn == 0) {
                st.c0[b] = 0.0, st.c1[b] = 1.0, st.c2[b] = 0.0, su1[b] = su2[b] = 0.0;
                cu0[b] = 1.0, cu1[b] = 0.0, st.tmp[b] = s;
                continue;
            }
            second = true;
            const double t = -std::log(s), h = -std::log(sn) - t;
            const double sm = std::exp(-(t + h * opt.r));
            st.tmp[b] = sm;
            const auto a1 = ancestral_step(s, sm, opt.eta);
            cu0[b] = a1.down / s;
            cu1[b] = -std::expm1(t + std::log(a1.down));  // −(e^{λ_i − λ_d} − 1), λ = −log σ
            su1[b] = opt.s_noise * a1.up;
            const auto a2 = ancestral_step(s, sn, opt.eta);
            const double e2 = -std::expm1(t + std::log(a2.down));
            st.c0[b] = a2.down / s;
            st.c1[b] = (1.0 - fac) * e2;
            st.c2[b] = fac * e2;
            su2[b] = opt.s_noise * a2.up;
        }
        if (second) {
            lincomb(u.v(), per_sample(cu0), x, per_sample(cu1), den.v());
            detail::add_noise(noise, u.v(), eps.v(), draw, st.s, st.tmp, su1);
            detail::denoise(m, u.v(), st.ones, st.tmp, den2.v(), i, where);
            lincomb(x, per_sample(st.c0), x, per_sample(st.c1), den.v(), per_sample(st.c2), den2.v());
            detail::add_noise(noise, x, eps.v(), draw, st.s, st.s_next, su2);
        } else {
            lincomb(x, per_sample(st.c0), x, per_sample(st.c1), den.v());
        }
        if (detail::observe(obs, i, st.steps, st.s, x, den.v())) return;
    }
}

// DPM-Solver++(2M) SDE (k-diffusion's sample_dpmpp_2m_sde; diffusers' algorithm_type "sde-dpmsolver++"):
// with h = λ_{i+1} − λ_i, ηh = η·h and r = h_{i−1}/h,
//   x ← (σ_{i+1}/σ_i)e^{−ηh}·x + (1 − e^{−h−ηh})·D
//       + [midpoint] ½(1 − e^{−h−ηh})·(D − D_{i−1})/r   or [heun] ((1 − e^{−h−ηh})/(−h−ηh) + 1)·(D − D_{i−1})/r
//       + s_noise·σ_{i+1}·√(1 − e^{−2ηh})·z
// Into σ = 0: x = D.
template <class Model, tensor X, class Noise = counter_noise, class Obs = no_observer>
void sample_dpmpp_2m_sde(Model& m, X&& x_in, const time_grid& grid, const dpmpp_2m_sde_options& opt = {},
                         Noise&& noise = {}, Obs&& obs = {}) {
    constexpr const char* where = "sample_dpmpp_2m_sde";
    const auto x = detail::writable_view(std::forward<X>(x_in), where);
    using T = typename decltype(x)::value_type;
    detail::check_eta_noise(opt.eta, opt.s_noise, where);
    detail::sigma_state<T> st(grid, x.batch, x.per_sample, where);
    auto b0 = st.make_buffer(), b1 = st.make_buffer(), eps = st.make_buffer();
    tensor_view<T> den = b0.v(), old = b1.v();
    std::vector<double> h_last(x.batch);
    std::uint64_t draw = 0;
    for (std::size_t i = 0; i < st.steps; ++i) {
        st.load(grid, i);
        detail::denoise(m, x, st.ones, st.s, den, i, where);
        const bool low = detail::lower_order_last(i, st.steps, opt.lower_order_final, opt.euler_at_final);
        for (std::size_t b = 0; b < st.batch; ++b) {
            const double s = st.s[b], sn = st.s_next[b];
            st.c2[b] = st.c4[b] = 0.0;
            if (sn == 0) {
                st.c0[b] = 0.0, st.c1[b] = 1.0;
                continue;
            }
            const double h = std::log(s / sn), eh = opt.eta * h, em = -std::expm1(-h - eh);
            st.c0[b] = sn / s * std::exp(-eh);
            st.c1[b] = em;
            if (i > 0 && !low) {
                const double r = h_last[b] / h;
                const double w = opt.solver_type == dpm_solver_type::midpoint ? 0.5 * em / r : (em / (-h - eh) + 1.0) / r;
                st.c1[b] += w;
                st.c2[b] = -w;
            }
            if (opt.eta != 0) st.c4[b] = opt.s_noise * sn * std::sqrt(-std::expm1(-2.0 * eh));
            h_last[b] = h;
        }
        lincomb(x, per_sample(st.c0), x, per_sample(st.c1), den, per_sample(st.c2), old);
        detail::add_noise(noise, x, eps.v(), draw, st.s, st.s_next, st.c4);
        if (detail::observe(obs, i, st.steps, st.s, x, den)) return;
        std::swap(den, old);
    }
}

// DPM-Solver++(3M) SDE (k-diffusion's sample_dpmpp_3m_sde): with h_η = (1 + η)h, r₀ = h_{i−1}/h,
// r₁ = h_{i−2}/h, the divided differences d₁,₀ = (D_i − D_{i−1})/r₀, d₁,₁ = (D_{i−1} − D_{i−2})/r₁,
// d₁ = d₁,₀ + (d₁,₀ − d₁,₁)·r₀/(r₀ + r₁), d₂ = (d₁,₀ − d₁,₁)/(r₀ + r₁), φ₂ = (e^{−h_η} − 1)/h_η + 1,
// φ₃ = φ₂/h_η − ½:
//   x ← e^{−h_η}x + (1 − e^{−h_η})D_i + φ₂d₁ − φ₃d₂ + s_noise·σ_{i+1}·√(1 − e^{−2ηh})·z
// (second order with d = d₁,₀ on step 1, first order on step 0). Into σ = 0: x = D.
template <class Model, tensor X, class Noise = counter_noise, class Obs = no_observer>
void sample_dpmpp_3m_sde(Model& m, X&& x_in, const time_grid& grid, const dpmpp_3m_sde_options& opt = {},
                         Noise&& noise = {}, Obs&& obs = {}) {
    constexpr const char* where = "sample_dpmpp_3m_sde";
    const auto x = detail::writable_view(std::forward<X>(x_in), where);
    using T = typename decltype(x)::value_type;
    detail::check_eta_noise(opt.eta, opt.s_noise, where);
    detail::sigma_state<T> st(grid, x.batch, x.per_sample, where);
    auto b0 = st.make_buffer(), b1 = st.make_buffer(), b2 = st.make_buffer(), eps = st.make_buffer();
    std::array<tensor_view<T>, 3> d{b0.v(), b1.v(), b2.v()};  // D_i, D_{i−1}, D_{i−2}
    std::vector<double> h1(x.batch), h2(x.batch);
    std::uint64_t draw = 0;
    for (std::size_t i = 0; i < st.steps; ++i) {
        st.load(grid, i);
        detail::denoise(m, x, st.ones, st.s, d[0], i, where);
        for (std::size_t b = 0; b < st.batch; ++b) {
            const double s = st.s[b], sn = st.s_next[b];
            st.c2[b] = st.c3[b] = st.c4[b] = 0.0;
            if (sn == 0) {
                st.c0[b] = 0.0, st.c1[b] = 1.0;
                continue;
            }
            const double h = std::log(s / sn), he = h * (opt.eta + 1.0);
            st.c0[b] = std::exp(-he);
            st.c1[b] = -std::expm1(-he);
            const double phi2 = std::expm1(-he) / he + 1.0, phi3 = phi2 / he - 0.5;
            if (i >= 2) {
                const double r0 = h1[b] / h, r1 = h2[b] / h, k = r0 / (r0 + r1);
                const double A = phi2 * (1.0 + k) - phi3 / (r0 + r1);  // weight of d₁,₀
                const double Bw = -phi2 * k + phi3 / (r0 + r1);        // weight of d₁,₁
                st.c1[b] += A / r0;
                st.c2[b] = -A / r0 + Bw / r1;
                st.c3[b] = -Bw / r1;
            } else if (i == 1) {
                const double r = h1[b] / h;
                st.c1[b] += phi2 / r;
                st.c2[b] = -phi2 / r;
            }
            if (opt.eta != 0) st.c4[b] = opt.s_noise * sn * std::sqrt(-std::expm1(-2.0 * h * opt.eta));
            h2[b] = h1[b];
            h1[b] = h;
        }
        lincomb(x, per_sample(st.c0), x, per_sample(st.c1), d[0], per_sample(st.c2), d[1], per_sample(st.c3), d[2]);
        detail::add_noise(noise, x, eps.v(), draw, st.s, st.s_next, st.c4);
        if (detail::observe(obs, i, st.steps, st.s, x, d[0])) return;
        std::rotate(d.begin(), d.begin() + 2, d.end());  // (D_i, D_{i−1}, D_{i−2}) → (free, D_i, D_{i−1})
    }
}

}  // namespace diffuse
