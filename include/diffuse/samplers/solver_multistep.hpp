#pragma once
// What diffusers' exponential-integrator multistep schedulers (DPMSolverMultistepScheduler,
// DEISMultistepScheduler) share: the walk over their timestep/σ table (schedules/solver_sigmas.hpp), the
// network evaluated at each integer timestep, its output read with the table's σ, the history of converted
// outputs, the warm-up and final-step order rules, and the linear update. The families differ only in the
// coefficients of that update (samplers/dpm_solver_multistep.hpp, samplers/deis.hpp).
//
// State at table point k: VE σ_k (float32 values, as upstream stores them), VP α_k = 1/√(σ_k² + 1),
// σ̃_k = σ_k·α_k, half log-SNR λ_k = log α_k − log σ̃_k (λ = ∞ at σ = 0). A step from point i to i + 1:
//   1. the network at timestep t_i on x. As upstream, the network is told t_i while its output is read with
//      (α_i, σ̃_i) of the σ table; with Karras, exponential or Lu σ these are not the state of t_i.
//   2. m_i = the converted output: x̂₀ (data prediction) or ε̂ (noise prediction), x̂₀ dynamically thresholded
//      where asked (Saharia et al. 2022, §2.3).
//   3. x ← a·x + b₀·m_i + b₁·m_{i−1} + b₂·m_{i−2} + c_z·z (z: noise draw i, SDE variants only), with the
//      coefficients of the step's order; all of them are computed and checked finite before any model call.
// Orders (multistep): p_i = 1 for i = 0 (and for the solver's order 1); then min(i + 1, solver_order), lowered on
// the last step to 1 when euler_at_final, when lower_order_final with fewer than 15 steps, or when the last σ is
// 0, and on the second-to-last step to ≤ 2 when lower_order_final with fewer than 15 steps.
// Singlestep (DPMSolverSinglestepScheduler): the orders come from the family's order list, and a step of order
// p > 1 starts from the state held at the last order-1 step (x_ref, p − 1 steps back) instead of the current x,
// which only feeds the network.
//
// Pull mode asks a diffuse::model for its network's own prediction at the timestep's VP state (√ᾱ_t,
// √(1 − ᾱ_t)) with t_net = t; push mode states ε̂ there. Either is then read with the table's (α_i, σ̃_i).
//
// σ-space table (diffusers' EDM schedulers, schedules/edm.hpp): no training schedule and no timesteps. The state
// is x = x₀ + σ·ε, the points are α_k = 1, σ̃_k = σ_k, λ_k = −log σ_k (upstream's _sigma_to_alpha_sigma_t returns
// α = 1 there), and step i asks the model for x̂₀ at (1, σ_i), its network time derived by the model (edm_time:
// c_noise = log(σ_i)/4). The update coefficients are the same expressions of these points.

#include <algorithm>
#include <array>
#include <cmath>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "diffuse/core/elementwise.hpp"
#include "diffuse/process/parameterization.hpp"
#include "diffuse/samplers/discrete.hpp"
#include "diffuse/samplers/stepper.hpp"
#include "diffuse/schedules/solver_sigmas.hpp"

namespace diffuse {

// A σ-space table for the multistep solvers (diffusers' EDM schedulers): the N + 1 σ of the walk, e.g.
// edm_sigmas(N, options) (schedules/edm.hpp).
struct sigma_space_table {
    std::vector<double> sigmas;
};

namespace detail {

// VP state and half log-SNR of a VE σ (diffusers' _sigma_to_alpha_sigma_t and λ = log α − log σ).
struct vp_point {
    double alpha, sigma, lambda;
};
[[nodiscard]] inline vp_point vp_point_of(double ve_sigma) {
    const double a = 1.0 / std::sqrt(ve_sigma * ve_sigma + 1.0);
    const double s = ve_sigma * a;
    return {a, s, std::log(a) - std::log(s)};
}

// One step's update x ← a·x + b[0]·m_i + b[1]·m_{i−1} + b[2]·m_{i−2} + noise·z.
struct multistep_update {
    std::size_t order = 1;
    double a = 0, noise = 0;
    std::array<double, 3> b{};
};

// How a family reads the network output (what m holds).
enum class multistep_output {
    data,              // m = x̂₀ (thresholded where asked)
    noise,             // m = ε̂; with thresholding through x̂₀ and back (DPM-Solver's noise form)
    noise_via_data,    // m = ε̂ = (x − α·x̂₀)/σ̃ from the (thresholded) x̂₀, always (DEIS)
};

// The common part of the multistep solver steppers (CRTP: Derived provides
//     multistep_update update(std::size_t i, std::size_t order) const   step i's coefficients
// from the table points i+1, i, i−1, i−2, which it reads through point(k)).
template <class Derived, class T, class Noise, memory_space S = memory_space::host>
class solver_multistep_stepper : public stepper<Derived, T, S> {
public:
    [[nodiscard]] std::size_t steps() const noexcept { return schedule_.sigmas.size() - 1; }
    // Whether the stepper walks a σ-space table (no timesteps, α = 1).
    [[nodiscard]] bool sigma_space() const noexcept { return sigma_space_; }
    [[nodiscard]] const solver_schedule& schedule() const noexcept { return schedule_; }
    // The order of step i (after the warm-up and final-step rules).
    [[nodiscard]] std::size_t order_of(std::size_t i) const { return updates_.at(i).order; }

    // Pull mode: the network's own prediction, and exact timesteps only for a network trained on them.
    template <class Model>
    void fulfil(Model& m, const evaluation<T, S>& e) {
        evaluation<T, S> r = e;
        if constexpr (!reads_discrete_time<Model>()) r.t_net = {};
        if constexpr (requires { m.predicts(); }) {
            answered_ = m.predicts();
            r.want = answered_;
        }
        evaluate(m, r);
    }

protected:
    struct rules {
        std::size_t solver_order;
        bool lower_order_final, euler_at_final;
        multistep_output output;
        bool stochastic;
        std::vector<std::size_t> singlestep_orders = {};  // empty: multistep; else one order per step
    };

    solver_multistep_stepper(batch_shape shape, std::span<const double> alphas_cumprod, solver_schedule sched, const rules& r,
                             const sample_clipping& thresholding, Noise noise, std::uint64_t first_sample, const char* where)
        : solver_multistep_stepper(shape, std::move(sched), r, thresholding, std::forward<Noise>(noise), first_sample, where, false) {
        const std::size_t N = schedule_.timesteps.size();
        alphas_cumprod_.assign(alphas_cumprod.begin(), alphas_cumprod.end());
        const std::size_t T_train = alphas_cumprod_.size();
        require(T_train >= 2, where, "alphas_cumprod.size()", T_train, ">= 2");
        for (std::size_t t = 0; t < T_train; ++t)
            if (!(alphas_cumprod_[t] > 0 && alphas_cumprod_[t] <= 1))
                require(false, where, "alphas_cumprod[" + std::to_string(t) + "]", alphas_cumprod_[t],
                        "(0, 1] (the solver schedulers replace a zero terminal value by 2^-24 first)");
        require(N >= 1, where, "schedule.timesteps.size()", N, ">= 1");
        require(schedule_.sigmas.size() == N + 1, where, "schedule.sigmas.size()", schedule_.sigmas.size(),
                "timesteps.size() + 1 = " + std::to_string(N + 1));
        for (std::size_t i = 0; i < N; ++i) {
            const auto t = schedule_.timesteps[i];
            if (!(t >= 0 && std::size_t(t) < T_train))
                require(false, where, "schedule.timesteps[" + std::to_string(i) + "]", t,
                        "[0, " + std::to_string(T_train - 1) + "]");
        }
        check_table(where);
    }

    // The σ-space table (top of this file): sigmas holds N + 1 values, non-increasing, the last may be 0.
    solver_multistep_stepper(batch_shape shape, sigma_space_table table, const rules& r, const sample_clipping& thresholding,
                             Noise noise, std::uint64_t first_sample, const char* where)
        : solver_multistep_stepper(shape, solver_schedule{{}, std::move(table.sigmas)}, r, thresholding, std::forward<Noise>(noise),
                                   first_sample, where, true) {
        require(schedule_.sigmas.size() >= 2, where, "table.sigmas.size()", schedule_.sigmas.size(), ">= 2 (num_inference_steps + 1)");
        check_table(where);
    }

private:
    // The members, and the checks both tables share.
    solver_multistep_stepper(batch_shape shape, solver_schedule sched, const rules& r, const sample_clipping& thresholding,
                             Noise noise, std::uint64_t first_sample, const char* where, bool sigma_space)
        : stepper<Derived, T, S>(shape.batch, shape.per_sample, where), schedule_(std::move(sched)), rules_(r), clip_(thresholding),
          noise_(std::forward<Noise>(noise)), first_sample_(first_sample), sigma_space_(sigma_space), raw_(shape), z_(shape),
          x0_(shape), held_(shape), scratch_(shape.batch * shape.per_sample),
          history_{workspace<T, S>(shape), workspace<T, S>(shape), workspace<T, S>(shape)}, t_(shape.batch), alpha_(shape.batch),
          sigma_(shape.batch), q_(shape.batch) {
        require(shape.batch >= 1 && shape.per_sample >= 1, where, "batch shape", shape.batch * shape.per_sample, "non-empty");
    }
    void check_table(const char* where) {
        const std::size_t N = steps();
        for (std::size_t k = 0; k <= N; ++k) {
            const double s = schedule_.sigmas[k];
            // the final σ_min may lie a float32 rounding above the spaced list's last value (Lu σ end at exp(log σ_min))
            const double above = k == N ? 1.0 + 1e-6 : 1.0;
            const bool ok = std::isfinite(s) && (k < N ? s > 0 : s >= 0) && (k == 0 || s <= schedule_.sigmas[k - 1] * above);
            if (!ok)
                require(false, where, "schedule.sigmas[" + std::to_string(k) + "]", s,
                        k == 0 ? std::string("(0, inf)")
                               : "(0, sigmas[" + std::to_string(k - 1) + "]]" + (k == N ? " (0 allowed last, or up to 1e-6 above)" : ""));
            points_.push_back(sigma_space_ ? vp_point{1.0, s, -std::log(s)} : vp_point_of(s));
        }
        require(rules_.solver_order >= 1 && rules_.solver_order <= 3, where, "solver_order", rules_.solver_order, "{1, 2, 3}");
        if (clip_.thresholding) check_clipping(clip_, where);
    }

protected:
    // Every step's order and coefficients, checked finite (a repeated σ makes some of upstream's 0/0).
    // Called by the derived constructor, once its own options are set.
    void plan() {
        const std::size_t N = steps();
        const bool final_zero = schedule_.sigmas.back() == 0.0, few = rules_.lower_order_final && N < 15;
        updates_.clear();
        for (std::size_t i = 0; i < N; ++i) {
            const std::size_t seen = std::min(i, rules_.solver_order);  // upstream's lower_order_nums
            const bool last = i + 1 == N && (rules_.euler_at_final || few || final_zero);
            const bool second_last = i + 2 == N && few;
            std::size_t p = 3;
            if (!rules_.singlestep_orders.empty()) {
                p = std::min(rules_.singlestep_orders.at(i), i + 1);  // upstream lowers it while outputs are missing
                require(p >= 1 && p <= 3, this->where(), "order of step " + std::to_string(i), p, "{1, 2, 3}");
            } else if (rules_.solver_order == 1 || seen < 1 || last) {
                p = 1;
            } else if (rules_.solver_order == 2 || seen < 2 || second_last) {
                p = 2;
            }
            multistep_update u = static_cast<const Derived&>(*this).update(i, p);
            u.order = p;
            bool finite = std::isfinite(u.a) && std::isfinite(u.noise);
            for (double c : u.b) finite = finite && std::isfinite(c);
            if (!finite)
                fail(this->where(), "step " + std::to_string(i) + " (order " + std::to_string(p) + ", sigma " +
                                        grid_value_text(schedule_.sigmas[i]) + " -> " + grid_value_text(schedule_.sigmas[i + 1]) +
                                        ") has non-finite coefficients: the sigma table repeats a value where the step divides by "
                                        "its log-SNR difference (upstream returns NaN there)");
            updates_.push_back(u);
        }
    }

    [[nodiscard]] const vp_point& point(std::size_t k) const noexcept { return points_[k]; }

    detail::step_task run_step(tensor_view<T, S> x) {
        const std::size_t i = this->step_index(), B = x.batch;
        if (sigma_space_) {  // x̂₀ at (1, σ_i); the model derives its network's time
            for (std::size_t b = 0; b < B; ++b) {
                t_[b] = schedule_.sigmas[i];
                alpha_[b] = 1.0;
                sigma_[b] = schedule_.sigmas[i];
            }
            answered_ = prediction::sample;
            co_await this->request(evaluation<T, S>{x, alpha_, sigma_, answered_, raw_.v(), {}, {}, first_sample_, "sigma", t_});
        } else {
            const auto t = schedule_.timesteps[i];
            const double ac = alphas_cumprod_[std::size_t(t)];
            for (std::size_t b = 0; b < B; ++b) {
                t_[b] = double(t);
                alpha_[b] = std::sqrt(ac);
                sigma_[b] = std::sqrt(1.0 - ac);
            }
            answered_ = prediction::epsilon;  // push mode: ε̂ at the timestep's VP state; pull mode may refine it
            co_await this->request(evaluation<T, S>{x, alpha_, sigma_, answered_, raw_.v(), t_, {}, first_sample_, "timestep", t_});
        }
        // the newest history slot receives m_i
        head_ = (head_ + 2) % 3;
        const tensor_view<T, S> m = history_[head_].v(), x0 = x0_.v();
        convert(x, i, m);
        const auto& u = updates_[i];
        const tensor_view<T, S> m1 = history_[(head_ + 1) % 3].v(), m2 = history_[(head_ + 2) % 3].v(), z = z_.v();
        if (rules_.stochastic) noise_(z, i);
        // singlestep: an order-1 step holds its start state, higher orders start from it
        const bool singlestep = !rules_.singlestep_orders.empty();
        if (singlestep && u.order == 1) detail::copy_values(held_.v(), x);
        const tensor_view<T, S> from = singlestep ? held_.v() : x;
        // x ← a·x_from + Σ_k b_k·m_{i−k} (+ c_z·z)
        if (u.order == 1) {
            if (rules_.stochastic) lincomb(x, u.a, from, u.b[0], m, u.noise, z);
            else lincomb(x, u.a, from, u.b[0], m);
        } else if (u.order == 2) {
            if (rules_.stochastic) lincomb(x, u.a, from, u.b[0], m, u.b[1], m1, u.noise, z);
            else lincomb(x, u.a, from, u.b[0], m, u.b[1], m1);
        } else {
            if (rules_.stochastic) lincomb(x, u.a, from, u.b[0], m, u.b[1], m1, u.b[2], m2, u.noise, z);
            else lincomb(x, u.a, from, u.b[0], m, u.b[1], m1, u.b[2], m2);
        }
        this->report(t_, x0);
    }

private:
    // m = the converted network output at table point i; x0_ = x̂₀ (for the observer and thresholding).
    void convert(tensor_view<T, S> x, std::size_t i, tensor_view<T, S> m) {
        const auto& p = points_[i];
        const tensor_view<T, S> raw = raw_.v(), x0 = x0_.v();
        const auto to_x0 = convert_coefficients(answered_, prediction::sample, p.alpha, p.sigma);
        if (rules_.output == multistep_output::noise && !clip_.thresholding) {
            const auto to_eps = convert_coefficients(answered_, prediction::epsilon, p.alpha, p.sigma);
            lincomb(m, to_eps.a, x, to_eps.b, raw);                       // ε̂
            lincomb(x0, 1.0 / p.alpha, x, -p.sigma / p.alpha, m);         // x̂₀ = (x − σ̃·ε̂)/α (observer)
            return;
        }
        lincomb(x0, to_x0.a, x, to_x0.b, raw);  // x̂₀
        if (clip_.thresholding) process_x0(x0, clip_, q_, scratch_);
        if (rules_.output == multistep_output::data) {
            detail::copy_values(m, x0);
        } else {
            lincomb(m, 1.0 / p.sigma, x, -p.alpha / p.sigma, x0);  // ε̂ = (x − α·x̂₀)/σ̃
        }
    }

    std::vector<double> alphas_cumprod_;
    solver_schedule schedule_;
    rules rules_;
    sample_clipping clip_;
    Noise noise_;
    std::uint64_t first_sample_;
    bool sigma_space_;
    std::vector<vp_point> points_;
    std::vector<multistep_update> updates_;
    workspace<T, S> raw_, z_, x0_, held_;  // held_: the singlestep block's start state
    std::vector<T> scratch_;  // host: dynamic thresholding only
    std::array<workspace<T, S>, 3> history_;  // m_i, m_{i−1}, m_{i−2} at head_, head_ + 1, head_ + 2 (mod 3)
    std::size_t head_ = 0;
    std::vector<double> t_, alpha_, sigma_, q_;
    prediction answered_ = prediction::epsilon;
};

}  // namespace detail
}  // namespace diffuse
