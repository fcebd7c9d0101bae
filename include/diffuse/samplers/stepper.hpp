#pragma once
// Samplers as steppers: one object per sampling run that advances one step at a time.
//
// A stepper is made from the grid, the options and the batch shape. It owns everything a run carries from
// step to step — multistep history, step-size controller, noise draw counter — and is driven in one of
// two ways, with the same bits:
//
//   pull    s.step(model, x)        calls the model as often as the step needs
//   push    for (auto* e = s.begin_step(x); e; e = s.resume()) {
//               // evaluate e->want at e->x, (e->alpha, e->sigma) into e->out, however you like
//           }
//
// A push-mode caller whose network runs elsewhere (another runtime, a server) can have a diffuse::model
// with any network fill the evaluation (`evaluate(m, *e)`), or do the conversion itself: the evaluation
// states the sampler state x = α·x₀ + σ·ε, the per-sample α and σ, and which prediction it wants.
//
// sample_* (the one-call form of every sampler) is `run(stepper, model, x, observer)`: a loop over
// steps with the observer after each.
//
// Why coroutines. A step of a multi-evaluation sampler (Heun, DPM-Solver-3, RK45, the accept/reject loop of
// DPM-adaptive, the corrector steps of predictor–corrector sampling) is written once, as straight-line code
// with `co_await this->request(...)` where it needs the model. In pull mode the driver answers each request
// at once; in push mode the caller answers it between begin_step/resume. Without coroutines every such
// step would be a hand-written state machine, and pull and push would be two codes that can disagree.
// The coroutine frame lives in memory the stepper owns (allocated once, reused by every step), so a step
// allocates nothing. A stepper can be copied (or moved) between steps: the copy resumes identically. It
// cannot be copied during a step (a step's frame points at its own stepper): that throws diffuse::error.

#include <algorithm>
#include <bit>
#include <cmath>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "diffuse/core/elementwise.hpp"
#include "diffuse/core/error.hpp"
#include "diffuse/core/reduce.hpp"
#include "diffuse/core/space_buffer.hpp"
#include "diffuse/core/tensor.hpp"
#include "diffuse/core/tensor_copy.hpp"
#include "diffuse/process/parameterization.hpp"
#include "diffuse/samplers/noise_source.hpp"
#include "diffuse/samplers/observer.hpp"

namespace diffuse {

// The shape of the batch a stepper is made for.
struct batch_shape {
    std::size_t batch;
    std::size_t per_sample;
};
template <class X>
[[nodiscard]] batch_shape shape_of(const X& x) {
    const auto v = view(x);  // a type that is not a tensor stops here with one sentence
    return {v.batch, v.per_sample};
}

namespace detail {
// A stepper's workspace tensor of the batch's shape in the state's memory space (allocated once, in the
// constructor). Its view is made on use, so a copied stepper's buffers are its own.
template <class T, memory_space S = memory_space::host>
struct workspace {
    space_buffer<T, S> data;
    std::size_t batch, per_sample;

    explicit workspace(batch_shape shape) : data(shape.batch * shape.per_sample), batch(shape.batch), per_sample(shape.per_sample) {}
    [[nodiscard]] tensor_view<T, S> v() { return data.view(batch, per_sample); }
};

// An option chosen at run time that has no device form yet: with a device state (S), `used` throws
// diffuse::error naming it.
template <memory_space S>
void require_host_only(bool used, std::string_view where, std::string_view what) {
    if (S != memory_space::host && used)
        fail(where, std::string(what) + " runs on the host only and has no device form yet: leave it off for a device state");
}

// The first thing every one-call sampler checks, so that a wrong argument type is reported by one sentence
// before any other diagnostic: x must be a tensor (not an expression), and the noise slot a noise source.
template <class X, class Noise>
constexpr bool check_sampler_arguments() {
    if constexpr (!tensor<X>) {
        static_assert(tensor<X>,
                      "diffuse: x is not a tensor diffuse knows: pass a container or a view (evaluate an Eigen or "
                      "xtensor expression into a Matrix/array first), include its adapter (diffuse/adapt/std.hpp, "
                      "eigen.hpp, eigen_tensor.hpp, xtensor.hpp) or specialise diffuse::tensor_traits (examples/custom_tensor.cpp)");
        return false;
    } else if constexpr (!noise_source<std::remove_cvref_t<Noise>, tensor_value_t<X>, tensor_space_v<X>>) {
        static_assert(noise_source<std::remove_cvref_t<Noise>, tensor_value_t<X>, tensor_space_v<X>>,
                      "diffuse: the argument after the options must be a noise source, callable as noise(view, draw) "
                      "(counter_noise, recorded_noise, brownian_tree_noise; no_noise for a deterministic sampler); "
                      "the observer comes after it");
        return false;
    } else {
        return true;
    }
}
// The stepper's value type for a one-call sampler's x (float when x is not a tensor, after the sentence above).
template <class X, bool = tensor<X>>
struct sampler_value {
    using type = float;
};
template <class X>
struct sampler_value<X, true> {
    using type = tensor_value_t<X>;
};
template <class X>
using sampler_value_t = typename sampler_value<X>::type;
// The stepper's memory space for a one-call sampler's x: where x lives (host when x is not a tensor).
template <class X, bool = tensor<X>>
struct sampler_space : std::integral_constant<memory_space, memory_space::host> {};
template <class X>
struct sampler_space<X, true> : std::integral_constant<memory_space, tensor_space_v<X>> {};
template <class X>
inline constexpr memory_space sampler_space_v = sampler_space<X>::value;
}  // namespace detail

// What a stepper needs evaluated: the `want` prediction of the sampler state x = α·x₀ + σ·ε for every
// sample, written into `out` (the batch's shape). The tensors live in the state's memory space S; the
// per-sample scalars are host values.
template <class T, memory_space S = memory_space::host>
struct evaluation {
    tensor_view<const T, S> x;
    std::span<const double> alpha;    // per-sample α (1 for the σ-space samplers)
    std::span<const double> sigma;    // per-sample σ
    prediction want = prediction::sample;
    tensor_view<T, S> out;
    std::span<const double> t_net = {};  // the network's own times where the sampler knows them (timesteps), else empty
    tensor_view<T, S> variance_out = {};   // learned variance output (DDPM, Nichol & Dhariwal 2021), else empty
    std::uint64_t first_sample = 0;      // id of sample 0 within the whole job
    // For messages and previews: the time the sampler names this evaluation by (σ, SDE t or timestep).
    std::string_view time_name = "sigma";
    std::span<const double> time = {};
};

namespace detail {

// Memory for one step's coroutine frame, owned by a stepper and reused by all its steps.
struct frame_arena {
    std::unique_ptr<std::max_align_t[]> memory;
    std::size_t size = 0;
    static inline thread_local frame_arena* current = nullptr;  // set by begin_step around run_step

    void* get(std::size_t n) {
        if (n > size) {
            memory = std::make_unique<std::max_align_t[]>((n + sizeof(std::max_align_t) - 1) / sizeof(std::max_align_t));
            size = n;
        }
        return memory.get();
    }
};

// The coroutine type of one step. Its frame is placed in the stepper's frame_arena, so steps allocate
// nothing once the first has run.
struct step_task {
    struct promise_type {
        std::exception_ptr exception;

        step_task get_return_object() noexcept { return step_task{std::coroutine_handle<promise_type>::from_promise(*this)}; }
        std::suspend_always initial_suspend() noexcept { return {}; }
        std::suspend_always final_suspend() noexcept { return {}; }
        void return_void() noexcept {}
        void unhandled_exception() noexcept { exception = std::current_exception(); }

        // The frame goes into the memory of the stepper whose begin_step is creating it (frame_arena::current);
        // nothing else creates step coroutines.
        static void* operator new(std::size_t n) { return frame_arena::current->get(n); }
        static void operator delete(void*, std::size_t) noexcept {}  // the stepper owns the memory
    };
    std::coroutine_handle<promise_type> handle;
};

template <class Model, class T, memory_space S>
void evaluate_unchecked(Model& m, const evaluation<T, S>& e) {
    if (e.variance_out.data != nullptr) {
        if constexpr (requires { m.predict_with_variance(e.x, e.alpha, e.sigma, e.want, e.out, e.variance_out, e.t_net,
                                                         e.first_sample); })
            m.predict_with_variance(e.x, e.alpha, e.sigma, e.want, e.out, e.variance_out, e.t_net, e.first_sample);
        else
            fail("evaluate", "the sampler needs the learned variance but the model has no predict_with_variance");
    } else {
        m.predict(e.x, e.alpha, e.sigma, e.want, e.out, e.t_net, e.first_sample);
    }
}

}  // namespace detail

// Fulfils an evaluation with a diffuse::model, a cfg_model or anything with their predict().
template <class Model, class T, memory_space S>
void evaluate(Model& m, const evaluation<T, S>& e) {
    detail::evaluate_unchecked(m, e);
}

// The common part of every stepper (CRTP: Derived provides
//     detail::step_task run_step(tensor_view<T, S> x)     the step's coroutine
//     std::size_t steps() const                          the number of steps of the run
// and may provide fulfil(model, evaluation) to answer a request its own way in pull mode). S is the memory
// space of the state and of every workspace (host by default); a step touches tensors through the primitives
// only, so the same step runs on either space.
template <class Derived, class T, memory_space S = memory_space::host>
class stepper {
public:
    using value_type = T;
    static constexpr memory_space space = S;

    // Steps completed so far; the run is over when done().
    [[nodiscard]] std::size_t step_index() const noexcept { return completed_; }
    [[nodiscard]] bool done() const noexcept { return completed_ >= self().steps() || finished_; }
    [[nodiscard]] bool in_step() const noexcept { return static_cast<bool>(task_.handle); }
    [[nodiscard]] std::size_t batch() const noexcept { return batch_; }
    [[nodiscard]] std::size_t per_sample() const noexcept { return per_sample_; }
    // The sampler's name, as errors give it.
    [[nodiscard]] const char* where() const noexcept { return where_; }

    // Pull: one whole step, calling the model for every evaluation it needs.
    template <class Model, tensor X>
    void step(Model& m, X&& x_in) {
        const auto x = detail::writable_view(std::forward<X>(x_in), where_);
        for (const evaluation<T, S>* e = begin_step(x); e != nullptr; e = resume()) {
            try {
                self().fulfil(m, *e);
            } catch (const error& err) {
                abandon();
                throw error("diffuse: " + std::string(where_) + ": step " + std::to_string(completed_) + " (" +
                            std::string(e->time_name) + " = " + std::to_string(e->time.empty() ? e->sigma[0] : e->time[0]) +
                            " for sample 0): " + std::string(detail::error_text(err)));
            }
        }
    }

    // Push: starts the next step on x (which must stay valid until the step completes). Returns the first
    // evaluation the step needs, or nullptr when the step completed without one.
    template <tensor X>
    const evaluation<T, S>* begin_step(X&& x_in) {
        static_assert(tensor_space_v<X> == S,
                      "diffuse: x lives in another memory space than the stepper's (a stepper's last template argument, "
                      "memory_space::host by default, is the space of the state it advances)");
        const auto x = detail::writable_view(std::forward<X>(x_in), where_);
        if (in_step()) detail::fail(where_, "begin_step called while step " + std::to_string(completed_) + " is in progress");
        if (failed_) detail::fail(where_, "the stepper failed in an earlier step and cannot continue");
        if (done()) detail::fail(where_, "all " + std::to_string(self().steps()) + " steps are done");
        if (x.batch != batch_ || x.per_sample != per_sample_)
            detail::fail(where_, "x is " + std::to_string(x.batch) + " x " + std::to_string(x.per_sample) +
                                     " but the stepper was made for " + std::to_string(batch_) + " x " +
                                     std::to_string(per_sample_));
        if (completed_ == 0) check_initial(x);
        reported_ = true;
        detail::frame_arena::current = &frame_;
        task_ = self().run_step(tensor_view<T, S>{x.data, x.batch, x.per_sample});
        detail::frame_arena::current = nullptr;
        return advance();
    }
    // Push: the caller has written the pending evaluation's out; continues the step. Returns the next
    // evaluation, or nullptr when the step is complete.
    const evaluation<T, S>* resume() {
        if (!pending_) detail::fail(where_, "resume called with no evaluation pending (call begin_step first)");
        return advance();
    }
    // The evaluation the current step waits for, or nullptr.
    [[nodiscard]] const evaluation<T, S>* pending() const noexcept { return pending_ ? &request_ : nullptr; }

    // What the last completed step reports to an observer (x is the state after it).
    [[nodiscard]] step_info<T, S> info(tensor_view<const T, S> x) const {
        return {completed_ == 0 ? 0 : completed_ - 1, self().steps(), info_time_, x, info_denoised_};
    }
    // False when the last step changed nothing and is not reported (a step whose points are equal).
    [[nodiscard]] bool reported() const noexcept { return reported_; }
    // Whether info() carries the step's x̂₀ (step_info::denoised; on by default). Turned off, a step may skip
    // forming x̂₀ where nothing else needs it (DDIM, DDPM: the update straight from x and the model output),
    // and info().denoised is then empty. The one-call sample_* forms turn it off when they have no observer.
    void set_report_denoised(bool on) noexcept { report_denoised_ = on; }
    [[nodiscard]] bool reports_denoised() const noexcept { return report_denoised_; }

    // Pull mode's answer to a request; a stepper may refine it (the SDE samplers pass their own time).
    template <class Model>
    void fulfil(Model& m, const evaluation<T, S>& e) {
        evaluate(m, e);
    }

protected:
    stepper(std::size_t batch, std::size_t per_sample, const char* where)
        : batch_(batch), per_sample_(per_sample), where_(where) {}
    ~stepper() { abandon(); }
    stepper(const stepper& o)
        : batch_(o.batch_), per_sample_(o.per_sample_), where_(o.where_), completed_(o.completed_),
          finished_(o.finished_), failed_(o.failed_), reported_(o.reported_), report_denoised_(o.report_denoised_) {
        o.check_copyable();
    }
    stepper(stepper&& o) : stepper(static_cast<const stepper&>(o)) {}
    stepper& operator=(const stepper& o) {
        o.check_copyable();
        check_copyable();
        batch_ = o.batch_;
        per_sample_ = o.per_sample_;
        where_ = o.where_;
        completed_ = o.completed_;
        finished_ = o.finished_;
        failed_ = o.failed_;
        reported_ = o.reported_;
        report_denoised_ = o.report_denoised_;
        return *this;
    }
    stepper& operator=(stepper&& o) { return *this = static_cast<const stepper&>(o); }

    // Inside run_step: `co_await this->request(e)` suspends the step until e.out holds the evaluation.
    std::suspend_always request(const evaluation<T, S>& e) {
        request_ = e;
        pending_ = true;
        return {};
    }
    // Inside run_step: what the observer sees after this step (views that stay valid until the next step).
    void report(std::span<const double> time, tensor_view<const T, S> denoised) {
        info_time_ = time;
        info_denoised_ = denoised;
    }
    // Inside run_step: this step changed nothing and is not shown to the observer.
    void skip_report() noexcept { reported_ = false; }
    // Inside run_step: the run ends after this step (early convergence, a final step that consumed the rest).
    void finish() noexcept { finished_ = true; }

private:
    Derived& self() noexcept { return static_cast<Derived&>(*this); }
    const Derived& self() const noexcept { return static_cast<const Derived&>(*this); }

    // NaN or Inf in the initial x is the caller's, not the network's: say so before the first step.
    template <class V>
    void check_initial(const V& x) const {
        if constexpr (S != memory_space::host) {  // device memory: the backend's finite check names the sample
            require_finite_samples(tensor_view<const T, S>(x), [where = where_](std::size_t b) {
                detail::fail(where, "the initial x holds NaN or Inf (sample " + std::to_string(b) + "), before any model call");
            });
        } else {
            if (!any_non_finite(x.data, x.size())) return;
            for (std::size_t b = 0; b < x.batch; ++b) {
                const auto* p = x.sample(b);
                for (std::size_t j = 0; j < x.per_sample; ++j)
                    if (!std::isfinite(p[j]))
                        detail::fail(where_, "the initial x holds NaN or Inf (sample " + std::to_string(b) + ", element " +
                                                 std::to_string(j) + "), before any model call");
            }
        }
    }
    static bool any_non_finite(const T* p, std::size_t n) noexcept {
        using bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
        constexpr bits exponent = static_cast<bits>(sizeof(T) == 4 ? 0x7f800000ull : 0x7ff0000000000000ull);
        bits count = 0;
        for (std::size_t j = 0; j < n; ++j) count += (std::bit_cast<bits>(p[j]) & exponent) == exponent;
        return count != 0;
    }
    void check_copyable() const {
        if (in_step()) detail::fail(where_, "a stepper cannot be copied or moved during a step (finish the step first)");
    }
    const evaluation<T, S>* advance() {
        pending_ = false;
        task_.handle.resume();
        if (!task_.handle.done()) return &request_;
        std::exception_ptr ex = task_.handle.promise().exception;
        task_.handle.destroy();
        task_.handle = {};
        if (ex) {
            failed_ = true;
            std::rethrow_exception(ex);
        }
        ++completed_;
        return nullptr;
    }
    void abandon() noexcept {
        if (task_.handle) {
            task_.handle.destroy();
            task_.handle = {};
            failed_ = true;
        }
        pending_ = false;
    }

    std::size_t batch_, per_sample_;
    const char* where_;
    std::size_t completed_ = 0;
    bool finished_ = false, failed_ = false, reported_ = true, pending_ = false, report_denoised_ = true;
    detail::step_task task_{};
    evaluation<T, S> request_{};
    std::span<const double> info_time_{};
    tensor_view<const T, S> info_denoised_{};
    detail::frame_arena frame_{};
};

// The one-call form: every remaining step of the stepper on x, the observer after each reported step
// (an observer returning false stops the run there).
template <class Stepper, class Model, tensor X, class Obs = no_observer>
void run(Stepper& s, Model& m, X&& x_in, Obs&& obs = {}) {
    using T = typename Stepper::value_type;
    constexpr memory_space S = Stepper::space;
    const tensor_view<T, S> xv = detail::writable_view(std::forward<X>(x_in), s.where());
    while (!s.done()) {
        s.step(m, xv);
        if (s.reported() && detail::notify(obs, s.info(tensor_view<const T, S>(xv)))) return;
    }
}

}  // namespace diffuse
