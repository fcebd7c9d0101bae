#pragma once
// A diffusers scheduler_config.json as a configured sampler.
//
//   const auto sched = diffuse::scheduler_from_config_file("model/scheduler_config.json");
//   for (const auto& w : sched.warnings()) std::fprintf(stderr, "%s\n", w.c_str());   // keys diffusers ignores too
//   diffuse::model m(my_net, sched.prediction_type, sched.discrete_model_time());     // flow: flow_model_time()
//                                                  // EDM: diffuse::edm_model(my_net, sched.edm_model_time())
//   diffuse::fill_normal(diffuse::batched(x, B), seed, 0, 0);                          // latents = randn(...)
//   sched.sample(m, diffuse::batched(x, B), /*num_inference_steps=*/30, diffuse::counter_noise{seed, 1});
//
// scheduler_from_config reads the file's `_class_name` and every key that class's __init__ takes in diffusers
// 0.42, with that class's own defaults for the keys a file omits (older files): each key is mapped to the
// stepper options and the grid recipe of docs/porting.md's table, or, where the library does not reproduce a
// value (variance_type "learned", use_beta_sigmas outside KDPM2Ancestral and FlowMatchEuler, flow σ in the VP
// solvers, what upstream itself refuses: "sample" for KDPM2Ancestral and EDM, ...), rejected by a diffuse::error
// naming the class, the key and the value. A key of the wrong type or out of range is an error naming it; an
// unknown class is an error naming it. Keys the class does not take are ignored, as diffusers ignores them, and
// listed by warnings(); keys starting with '_' (_diffusers_version, _use_default_values) are metadata.
//
// sample(m, x, N, noise, observer[, mu]) is set_timesteps(N) and diffusers' whole denoising loop: x enters as
// the latents diffusers draws (unit normals; the sampler applies init_noise_sigma itself) and leaves as the
// loop's final latents, in diffusers' state (the VP state for UniPC, whose stepper runs in σ-space). step()'s
// own arguments take their defaults (DDIM η 0, no Euler churn, LMS order 4, TCD η 0.3); trailing spacing walks
// diffusers' list as it is (N + 1 steps where numpy's arange gives N + 1 values: DDPM, DDIM, the Euler family;
// DDIMInverse and the solver tables refuse such a list with a named error); DDIMInverse steps from t − T//N as
// its step() does. The model reads its network time as the scheduler feeds
// it: discrete_model_time() for a network on the training timesteps (the integer timesteps of DDPM, DDIM, LCM,
// TCD and the solver tables; for the σ-space schedulers the interpolation their timesteps come from: linear in
// σ, log σ with Karras or exponential σ; KDPM2Ancestral's exact grid and midpoint timesteps, evaluation::t_net),
// flow_model_time() for a flow-matching network (FlowMatch*: prediction "flow_prediction"), edm_model_time()
// for an EDM-preconditioned one (EDM*: edm_model(net, time), whose model predicts x₀). The step noise comes
// from the noise source (counter_noise, recorded_noise ...), one draw per step as each stepper documents.
//
// Adding a class: one row in detail::scheduler_classes() (its name and a parse function) and that function,
// which reads the class's keys with config_keys and fills a recipe (a struct of scheduler_recipe with a
// `run(model, x, schedule, N, noise, observer, mu)` member). A class that a present recipe runs (another
// σ-space stepper on the Euler σ list, another solver on multistep_solver_schedule) extends that recipe's
// `kind`; a class with its own grid adds a recipe struct to the variant.

#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "diffuse/core/elementwise.hpp"
#include "diffuse/core/error.hpp"
#include "diffuse/io/json.hpp"
#include "diffuse/process/parameterization.hpp"
#include "diffuse/samplers/ddim.hpp"
#include "diffuse/samplers/ddpm.hpp"
#include "diffuse/samplers/deis.hpp"
#include "diffuse/samplers/dpm_solver_multistep.hpp"
#include "diffuse/samplers/dpm_solver_singlestep.hpp"
#include "diffuse/samplers/euler.hpp"
#include "diffuse/samplers/flow_match.hpp"
#include "diffuse/samplers/grid.hpp"
#include "diffuse/samplers/lcm.hpp"
#include "diffuse/samplers/lms.hpp"
#include "diffuse/samplers/model.hpp"
#include "diffuse/samplers/noise_source.hpp"
#include "diffuse/samplers/observer.hpp"
#include "diffuse/samplers/tcd.hpp"
#include "diffuse/samplers/unipc.hpp"
#include "diffuse/schedules/beta.hpp"
#include "diffuse/schedules/edm.hpp"
#include "diffuse/schedules/flow.hpp"
#include "diffuse/schedules/sigmas.hpp"
#include "diffuse/schedules/solver_sigmas.hpp"
#include "diffuse/schedules/timesteps.hpp"

namespace diffuse {

namespace detail {
// x ← c_b·x per sample (the initial-noise scale and the σ-space ↔ VP conversion of the recipes).
template <class X>
void scale_rows(X&& x, const std::vector<double>& c) {
    lincomb(x, per_sample(c), x);
}
template <class X>
std::vector<double> row_constant(const X& x, double c) {
    return std::vector<double>(shape_of(x).batch, c);
}
}  // namespace detail

// The recipes: a stepper's options and the grid it walks, as one scheduler class builds them.
namespace scheduler_recipes {

// DDPMScheduler, DDIMScheduler, DDIMInverseScheduler, LCMScheduler, TCDScheduler: the training timesteps
// (init_noise_sigma 1). DDPM and DDIM walk diffusers' trailing list as it is (N + 1 steps where numpy's arange
// yields N + 1 values: discrete_timesteps' trailing_extra_timestep).
struct discrete {
    enum class kind { ddpm, ddim, ddim_inverse, lcm, tcd } k = kind::ddpm;
    timestep_spacing spacing = timestep_spacing::leading;
    std::int64_t steps_offset = 0;
    ddpm_options ddpm{};
    ddim_options ddim{};
    ddim_inverse_options inverse{};
    lcm_options lcm{};
    tcd_options tcd{};                    // step()'s eta (the paper's γ), 0.3 by default
    std::size_t original_inference_steps = 50;

    template <class Model, class X, class Noise, class Obs>
    void run(Model& m, X&& x, const discrete_schedule& s, std::size_t N, Noise&& noise, Obs&& obs, std::optional<double>) const {
        const auto& ac = s.alphas_cumprod;
        switch (k) {
            case kind::ddpm: {
                auto o = ddpm;
                o.trailing_extra_timestep = true;
                sample_ddpm(m, x, ac, discrete_grid(discrete_timesteps(ac.size(), N, spacing, steps_offset, true)), o, noise, obs);
                break;
            }
            case kind::ddim: {
                auto o = ddim;
                o.num_inference_steps = N;  // prev_timestep = t − T//N (diffusers' rule)
                o.trailing_extra_timestep = true;
                sample_ddim(m, x, ac, discrete_grid(discrete_timesteps(ac.size(), N, spacing, steps_offset, true)), o, noise, obs);
                break;
            }
            case kind::ddim_inverse: {  // the clean sample (−1), then the timesteps ascending; each step from t' − T//N
                // upstream's N + 1 trailing list starts at −1, which its step reads as the target ᾱ_{T−1}
                if (spacing == timestep_spacing::trailing && detail::trailing_has_extra_value(ac.size(), N))
                    detail::fail("DDIMInverseScheduler", "trailing spacing with num_train_timesteps " + std::to_string(ac.size()) +
                                                             " and num_inference_steps " + std::to_string(N) +
                                                             " is not supported (numpy's arange yields N + 1 timesteps, the "
                                                             "first -1, which upstream reads as alphas_cumprod[-1])");
                const auto t = discrete_timesteps(ac.size(), N, spacing, steps_offset);
                std::vector<double> g{-1.0};
                for (auto it = t.rbegin(); it != t.rend(); ++it) g.push_back(double(*it));
                auto o = inverse;
                o.prev_timestep = prev_timestep_rule::fixed_stride;
                o.num_inference_steps = N;
                sample_ddim_inverse(m, x, ac, time_grid(g), o, noise, obs);
                break;
            }
            case kind::lcm:
                sample_lcm(m, x, ac, discrete_grid(lcm_timesteps(N, original_inference_steps, ac.size())), lcm, noise, obs);
                break;
            case kind::tcd:  // set_timesteps(N) at strength 1
                sample_tcd(m, x, ac, discrete_grid(tcd_timesteps(N, original_inference_steps, ac.size())), tcd, noise, obs);
                break;
        }
    }
};

// The Euler family on EulerDiscreteScheduler's σ list (euler_discrete_sigmas; KDPM2Ancestral: the same list with
// its network timesteps, kdpm2_ancestral_sigmas); x starts as init_noise_sigma·z.
struct sigma {
    enum class kind { euler, euler_ancestral, heun, dpm_2, dpm_2_ancestral, lms } k = kind::euler;
    euler_options grid{};
    churn_options churn{};        // Euler's step() arguments (s_churn … default 0: deterministic)
    ancestral_options ancestral{};
    lms_options lms{};            // LMSDiscreteScheduler.step's order (4)

    template <class Model, class X, class Noise, class Obs>
    void run(Model& m, X&& x, const discrete_schedule& s, std::size_t N, Noise&& noise, Obs&& obs, std::optional<double>) const {
        if (k == kind::dpm_2_ancestral) {  // the grid points' and midpoints' own timesteps (evaluation::t_net)
            auto ks = kdpm2_ancestral_sigmas(s.alphas_cumprod, N, grid);
            dpm_2_ancestral_options a(ancestral);
            a.timesteps = std::move(ks.timesteps);
            a.midpoint_timesteps = std::move(ks.midpoint_timesteps);
            detail::scale_rows(x, detail::row_constant(x, ks.init_noise_sigma));
            sample_dpm_2_ancestral(m, x, time_grid(ks.sigmas), a, noise, obs);
            return;
        }
        const auto es = euler_discrete_sigmas(s.alphas_cumprod, N, grid);
        detail::scale_rows(x, detail::row_constant(x, es.init_noise_sigma));  // latents = randn · init_noise_sigma
        const time_grid g(es.sigmas);
        switch (k) {
            case kind::euler: sample_euler(m, x, g, churn, noise, obs); break;
            case kind::euler_ancestral: sample_euler_ancestral(m, x, g, ancestral, noise, obs); break;
            case kind::heun: sample_heun(m, x, g, churn_options{}, noise, obs); break;
            case kind::dpm_2: sample_dpm_2(m, x, g, churn_options{}, noise, obs); break;
            case kind::dpm_2_ancestral: break;  // above
            case kind::lms: sample_lms(m, x, g, lms, noise, obs); break;
        }
    }
};

// DPMSolverMultistepScheduler, DPMSolverSinglestepScheduler, DEISMultistepScheduler on their own timestep/σ
// table (multistep_solver_schedule); x is the VP state throughout.
struct solver {
    enum class kind { dpm_multistep, dpm_singlestep, deis } k = kind::dpm_multistep;
    solver_schedule_options table{};
    dpm_solver_multistep_options multistep{};
    dpm_solver_singlestep_options singlestep{};
    deis_options deis{};

    template <class Model, class X, class Noise, class Obs>
    void run(Model& m, X&& x, const discrete_schedule& s, std::size_t N, Noise&& noise, Obs&& obs, std::optional<double>) const {
        const auto& ac = s.alphas_cumprod;
        const auto t = multistep_solver_schedule(ac, N, table);
        switch (k) {
            case kind::dpm_multistep: sample_dpm_solver_multistep(m, x, ac, t, multistep, noise, obs); break;
            case kind::dpm_singlestep: sample_dpm_solver_singlestep(m, x, ac, t, singlestep, noise, obs); break;
            case kind::deis: sample_deis(m, x, ac, t, deis, noise, obs); break;
        }
    }
};

// UniPCMultistepScheduler: the σ list of the solver table (its set_timesteps is DPMSolverMultistep's), walked
// by the σ-space UniPC stepper: x enters as the VP latents z, runs as √(1 + σ²)·x_VP, leaves as the VP state.
struct unipc {
    solver_schedule_options table{};
    unipc_options options{};

    template <class Model, class X, class Noise, class Obs>
    void run(Model& m, X&& x, const discrete_schedule& s, std::size_t N, Noise&& noise, Obs&& obs, std::optional<double>) const {
        const auto t = multistep_solver_schedule(s.alphas_cumprod, N, table);
        const double first = t.sigmas.front(), last = t.sigmas.back();
        detail::scale_rows(x, detail::row_constant(x, std::sqrt(1.0 + first * first)));
        sample_unipc(m, x, time_grid(t.sigmas), options, noise, obs);
        detail::scale_rows(x, detail::row_constant(x, 1.0 / std::sqrt(1.0 + last * last)));
    }
};

// FlowMatchEulerDiscreteScheduler, FlowMatchHeunDiscreteScheduler: the flow σ grid (flow_match_sigmas) from the
// noise z itself; the network is fed σ·T (options.timesteps).
struct flow {
    enum class kind { euler, heun } k = kind::euler;
    flow_match_config config{};
    bool stochastic_sampling = false;
    double base_shift = 0.5, max_shift = 1.15, base_image_seq_len = 256, max_image_seq_len = 4096;

    template <class Model, class X, class Noise, class Obs>
    void run(Model& m, X&& x, const discrete_schedule&, std::size_t N, Noise&& noise, Obs&& obs, std::optional<double> mu) const {
        const auto fs = flow_match_sigmas(config, N, mu);
        const time_grid g(fs.sigmas);
        if (k == kind::euler) {
            flow_euler_options o;
            o.stochastic_sampling = stochastic_sampling;
            o.timesteps = fs.timesteps;
            if (stochastic_sampling) sample_flow_euler(m, x, g, o, noise, obs);
            else sample_flow_euler(m, x, g, o, no_noise{}, obs);
        } else {
            flow_heun_options o;  // step()'s churn arguments default to none
            o.timesteps = fs.timesteps;
            sample_flow_heun(m, x, g, o, noise, obs);
        }
    }
};

// EDMEulerScheduler, EDMDPMSolverMultistepScheduler: the EDM σ table (edm_sigmas) walked by Euler (step()'s churn
// arguments default to none; churn_order diffusers with diffusers_edm_sigma_data as the scheduler reads its
// output) or by DPM-Solver++ on the σ-space table; x starts as init_noise_sigma·z = √(σ_max² + 1)·z (upstream's
// value, not σ_0) and stays in σ-space. The network is EDM-preconditioned (edm_model_time()).
struct edm {
    enum class kind { euler, dpm_multistep } k = kind::euler;
    edm_schedule_options table{};
    double sigma_data = 0.5;
    prediction output = prediction::epsilon;  // prediction_type: the raw network's output (epsilon or v)
    dpm_solver_multistep_options multistep{};

    template <class Model, class X, class Noise, class Obs>
    void run(Model& m, X&& x, const discrete_schedule&, std::size_t N, Noise&& noise, Obs&& obs, std::optional<double>) const {
        const auto sigmas = edm_sigmas(N, table);
        detail::scale_rows(x, detail::row_constant(x, std::sqrt(table.sigma_max * table.sigma_max + 1.0)));
        if (k == kind::euler) {
            churn_options c;
            c.order = churn_order::diffusers;
            c.diffusers_prediction = output;
            c.diffusers_edm_sigma_data = sigma_data;
            sample_euler(m, x, time_grid(sigmas), c, noise, obs);
        } else {
            sample_dpm_solver_multistep(m, x, sigma_space_table{sigmas}, multistep, noise, obs);
        }
    }
};

}  // namespace scheduler_recipes

using scheduler_recipe = std::variant<scheduler_recipes::discrete, scheduler_recipes::sigma, scheduler_recipes::solver,
                                      scheduler_recipes::unipc, scheduler_recipes::flow, scheduler_recipes::edm>;

// A scheduler_config.json read into a sampler (scheduler_from_config).
struct configured_scheduler {
    std::string class_name;
    discrete_schedule_config schedule_config{};  // the training schedule (unused by the flow-matching and EDM classes)
    discrete_schedule schedule{};                // built from it (empty for the flow-matching and EDM classes)
    prediction prediction_type = prediction::epsilon;
    discrete_time::interpolation interpolation = discrete_time::interpolation::log_sigma;  // σ → network timestep
    scheduler_recipe recipe{};
    std::vector<std::string> ignored_keys{};     // keys the class does not take

    [[nodiscard]] bool is_flow() const noexcept { return std::holds_alternative<scheduler_recipes::flow>(recipe); }
    [[nodiscard]] bool is_edm() const noexcept { return std::holds_alternative<scheduler_recipes::edm>(recipe); }
    // "key: ignored (not a parameter of Class)" for every ignored key.
    [[nodiscard]] std::vector<std::string> warnings() const {
        std::vector<std::string> w;
        for (const auto& k : ignored_keys) w.push_back(k + ": ignored (not a parameter of " + class_name + ")");
        return w;
    }
    // The network time of a discrete-timestep network under this scheduler (not for the flow-matching and EDM classes).
    [[nodiscard]] discrete_time discrete_model_time() const {
        if (is_flow()) detail::fail("configured_scheduler", class_name + " drives a flow-matching network: use flow_model_time()");
        if (is_edm()) detail::fail("configured_scheduler", class_name + " drives an EDM-preconditioned network: use edm_model_time()");
        return discrete_time(schedule.alphas_cumprod, interpolation);
    }
    // The network time of a flow-matching network (the flow-matching classes only).
    [[nodiscard]] flow_time flow_model_time() const {
        if (!is_flow()) detail::fail("configured_scheduler", class_name + " is not a flow-matching scheduler: use " + other_clock());
        return flow_time{double(std::get<scheduler_recipes::flow>(recipe).config.num_train_timesteps)};
    }
    // The network time of an EDM-preconditioned network (the EDM classes only): sigma_data and prediction_type
    // (the raw output F: epsilon or v_prediction) of the file; its model predicts x₀ (edm_model(net, time)).
    [[nodiscard]] edm_time edm_model_time() const {
        if (!is_edm()) detail::fail("configured_scheduler", class_name + " is not an EDM scheduler: use " + other_clock());
        const auto& e = std::get<scheduler_recipes::edm>(recipe);
        return edm_time{e.sigma_data, e.output == prediction::v ? edm_output::v_prediction : edm_output::epsilon};
    }
    // set_timesteps' mu for use_dynamic_shifting: calculate_shift over the config's base/max shift and lengths.
    [[nodiscard]] double mu_for(double image_seq_len) const {
        if (!is_flow()) detail::fail("configured_scheduler", class_name + " has no dynamic shift (mu)");
        const auto& f = std::get<scheduler_recipes::flow>(recipe);
        return calculate_shift(image_seq_len, f.base_image_seq_len, f.max_image_seq_len, f.base_shift, f.max_shift);
    }
    // set_timesteps(num_inference_steps[, mu]) and the loop: x holds the latents z on entry, the result on return.
    // (EDM classes: give a model on edm_model_time(), whose predictions are x₀.)
    template <class Model, class X, class Noise = counter_noise, class Obs = no_observer>
    void sample(Model& m, X&& x, std::size_t num_inference_steps, Noise&& noise = {}, Obs&& obs = {},
                std::optional<double> mu = std::nullopt) const {
        static_assert(detail::check_sampler_arguments<X, Noise>());
        std::visit([&](const auto& r) { r.run(m, x, schedule, num_inference_steps, noise, obs, mu); }, recipe);
    }

private:
    [[nodiscard]] std::string other_clock() const {
        return is_flow() ? "flow_model_time()" : is_edm() ? "edm_model_time()" : "discrete_model_time()";
    }
};

namespace detail {

// The keys of one scheduler_config.json object, read by name with the class's defaults; every read key is
// marked, and the rest are the ignored keys. Errors: "scheduler_from_config: Class.key: ...".
class config_keys {
public:
    config_keys(const io::json_value& root, std::string class_name) : root_(root), cls_(std::move(class_name)) {}

    [[noreturn]] void bad(std::string_view key, const std::string& what) const {
        fail("scheduler_from_config", cls_ + "." + std::string(key) + ": " + what);
    }
    // The value of key, or nullptr when the file omits it (null counts as given: the caller decides).
    const io::json_value* get(std::string_view key) {
        read_.insert(std::string(key));
        return root_.find(std::string(key));
    }
    double number(std::string_view key, double def) {
        const auto* v = get(key);
        if (!v) return def;
        if (!v->is_number()) bad(key, "expected a number");
        return v->as_number();
    }
    double number_in(std::string_view key, double def, double lo, double hi) {
        const double x = number(key, def);
        if (!(x >= lo && x <= hi)) bad(key, text(x) + " is outside [" + text(lo) + ", " + text(hi) + "]");
        return x;
    }
    std::optional<double> optional_number(std::string_view key) {  // null or absent: none
        const auto* v = get(key);
        if (!v || v->is_null()) return std::nullopt;
        if (!v->is_number()) bad(key, "expected null or a number");
        return v->as_number();
    }
    std::int64_t integer(std::string_view key, std::int64_t def, std::int64_t lo, std::int64_t hi) {
        const auto* v = get(key);
        if (!v) return def;
        if (!v->is_number() || v->as_number() != std::floor(v->as_number())) bad(key, "expected an integer");
        const double x = v->as_number();
        if (!(x >= double(lo) && x <= double(hi)))
            bad(key, text(x) + " is outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
        return std::int64_t(x);
    }
    bool boolean(std::string_view key, bool def) {
        const auto* v = get(key);
        if (!v) return def;
        if (!v->is_bool()) bad(key, "expected true or false");
        return v->as_bool();
    }
    // A string among `allowed` (null reads as def where null_is_default).
    std::string choice(std::string_view key, std::string def, std::initializer_list<std::string_view> allowed,
                       bool null_is_default = false) {
        const auto* v = get(key);
        if (!v || (null_is_default && v->is_null())) return def;
        if (!v->is_string()) bad(key, "expected a string");
        for (auto a : allowed)
            if (v->as_string() == a) return v->as_string();
        std::string names;
        for (auto a : allowed) names += (names.empty() ? "" : ", ") + std::string(a);
        bad(key, "\"" + v->as_string() + "\" is not one of {" + names + "}");
    }
    // A key whose non-default values the library does not reproduce: read and checked to be the default.
    void require_false(std::string_view key, std::string_view why) {
        if (boolean(key, false)) bad(key, "true is not supported (" + std::string(why) + ")");
    }
    void require_null(std::string_view key, std::string_view why) {
        const auto* v = get(key);
        if (v && !v->is_null()) bad(key, "only null is supported (" + std::string(why) + ")");
    }
    // A key that only matters with an unsupported option (flow_shift without use_flow_sigmas): type-checked only.
    void unused_number(std::string_view key) { (void)number(key, 0.0); }
    void unused_choice(std::string_view key, std::initializer_list<std::string_view> allowed) {
        (void)choice(key, std::string(*allowed.begin()), allowed, true);
    }

    // The training schedule keys (num_train_timesteps, beta_*, trained_betas, rescale_betas_zero_snr when taken).
    discrete_schedule_config schedule(double beta_start, double beta_end, std::string beta_schedule, bool has_zero_snr) {
        discrete_schedule_config c;
        c.num_train_timesteps = std::size_t(integer("num_train_timesteps", 1000, 2, 1000000));
        c.beta_start = number("beta_start", beta_start);
        c.beta_end = number("beta_end", beta_end);
        c.beta_schedule = choice("beta_schedule", std::move(beta_schedule), {"linear", "scaled_linear", "squaredcos_cap_v2"});
        if (const auto* v = get("trained_betas"); v && !v->is_null()) {
            if (!v->is_array()) bad("trained_betas", "expected null or a list of numbers");
            std::vector<double> b;
            for (const auto& e : v->as_array()) {
                if (!e.is_number()) bad("trained_betas", "expected null or a list of numbers");
                b.push_back(e.as_number());
            }
            if (b.size() < 2 || b.size() > 1000000) bad("trained_betas", "expected 2 to 1000000 values");
            c.num_train_timesteps = b.size();
            c.trained_betas = std::move(b);
        }
        if (has_zero_snr) c.rescale_betas_zero_snr = boolean("rescale_betas_zero_snr", false);
        return c;
    }
    prediction prediction_type(std::initializer_list<std::string_view> allowed = {"epsilon", "sample", "v_prediction"}) {
        return parse_prediction(choice("prediction_type", "epsilon", allowed));
    }
    timestep_spacing spacing(std::string def) {
        return parse_timestep_spacing(choice("timestep_spacing", std::move(def), {"linspace", "leading", "trailing"}));
    }
    std::int64_t steps_offset() { return integer("steps_offset", 0, 0, 1000000); }
    template <class Clip>
    void clipping(Clip& c, bool clip_default, bool has_thresholding) {
        c.clip_sample = boolean("clip_sample", clip_default);
        c.clip_sample_range = number_in("clip_sample_range", 1.0, 1e-12, 1e300);
        if (!has_thresholding) return;
        c.thresholding = boolean("thresholding", false);
        c.dynamic_thresholding_ratio = number_in("dynamic_thresholding_ratio", 0.995, 1e-12, 1.0);
        c.sample_max_value = number_in("sample_max_value", 1.0, 1.0, 1e300);
    }
    template <class Options>
    void thresholding(Options& o) {
        o.thresholding = boolean("thresholding", false);
        o.dynamic_thresholding_ratio = number_in("dynamic_thresholding_ratio", 0.995, 1e-12, 1.0);
        o.sample_max_value = number_in("sample_max_value", 1.0, 1.0, 1e300);
    }
    // use_karras_sigmas / use_exponential_sigmas (excluding each other): 1, 2 (0: neither); use_beta_sigmas is
    // refused, or (beta_allowed) 3, excluding the other two.
    int sigma_spacing(bool beta_allowed = false) {
        const bool karras = boolean("use_karras_sigmas", false), exponential = boolean("use_exponential_sigmas", false);
        const bool beta = beta_allowed && boolean("use_beta_sigmas", false);
        if (!beta_allowed) require_false("use_beta_sigmas", "beta-distributed σ are not reproduced");
        if (karras && exponential) bad("use_exponential_sigmas", "use_karras_sigmas and use_exponential_sigmas exclude each other");
        if (beta && (karras || exponential)) bad("use_beta_sigmas", "only one of use_karras_sigmas, use_exponential_sigmas, use_beta_sigmas");
        return karras ? 1 : exponential ? 2 : beta ? 3 : 0;
    }
    // The VP solvers' flow-σ keys (use_flow_sigmas, flow_shift, use_dynamic_shifting, time_shift_type).
    void no_flow_sigmas() {
        require_false("use_flow_sigmas", "flow σ in the VP solver schedulers are not reproduced");
        unused_number("flow_shift");
        require_false("use_dynamic_shifting", "it applies to flow σ only");
        unused_choice("time_shift_type", {"exponential", "linear"});
    }

    // The keys present in the file but never read (metadata keys starting with '_' aside).
    [[nodiscard]] std::vector<std::string> ignored() const {
        std::vector<std::string> out;
        for (const auto& [k, v] : root_.as_object())
            if (!k.starts_with('_') && !read_.count(k)) out.push_back(k);
        return out;
    }
    [[nodiscard]] const std::string& class_name() const noexcept { return cls_; }

private:
    static std::string text(double x) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.10g", x);
        return buf;
    }
    const io::json_value& root_;
    std::string cls_;
    std::set<std::string> read_;
};

// ---- one parse function per class: diffusers 0.42's __init__ keys, in its order -----------------------------

inline void parse_ddpm(config_keys& k, configured_scheduler& s) {
    s.schedule_config = k.schedule(1e-4, 0.02, "linear", true);
    scheduler_recipes::discrete r;
    r.k = scheduler_recipes::discrete::kind::ddpm;
    const auto variance = k.choice("variance_type", "fixed_small",
                                   {"fixed_small", "fixed_small_log", "fixed_large", "fixed_large_log", "learned", "learned_range"}, true);
    if (variance == "fixed_large_log" || variance == "learned")
        k.bad("variance_type", "\"" + variance + "\" is not supported (fixed_small, fixed_small_log, fixed_large, learned_range)");
    r.ddpm.variance_type = parse_ddpm_variance(variance);
    k.clipping(r.ddpm, true, true);
    s.prediction_type = k.prediction_type();
    r.spacing = k.spacing("leading");
    r.steps_offset = k.steps_offset();
    s.recipe = r;
}

inline void parse_ddim(config_keys& k, configured_scheduler& s) {
    s.schedule_config = k.schedule(1e-4, 0.02, "linear", true);
    scheduler_recipes::discrete r;
    r.k = scheduler_recipes::discrete::kind::ddim;
    k.clipping(r.ddim, true, true);
    r.ddim.set_alpha_to_one = k.boolean("set_alpha_to_one", true);
    r.ddim.prev_timestep = prev_timestep_rule::fixed_stride;  // diffusers' t − T//N
    r.steps_offset = k.steps_offset();
    s.prediction_type = k.prediction_type();
    r.spacing = k.spacing("leading");
    s.recipe = r;
}

inline void parse_ddim_inverse(config_keys& k, configured_scheduler& s) {
    s.schedule_config = k.schedule(1e-4, 0.02, "linear", true);
    scheduler_recipes::discrete r;
    r.k = scheduler_recipes::discrete::kind::ddim_inverse;
    r.inverse.clip_sample = k.boolean("clip_sample", true);  // true upstream (ddim_inverse_options' default is false)
    r.inverse.set_alpha_to_one = k.boolean("set_alpha_to_one", true);
    r.inverse.model_at_target = true;                        // diffusers evaluates at the next timestep
    r.steps_offset = k.steps_offset();
    s.prediction_type = k.prediction_type();
    r.inverse.clip_sample_range = k.number_in("clip_sample_range", 1.0, 1e-12, 1e300);
    r.spacing = k.spacing("leading");
    if (r.spacing == timestep_spacing::linspace)  // each step goes from t − T//N to t (fixed_stride), on either list
        k.bad("timestep_spacing", "\"linspace\" is not supported (DDIMInverseScheduler.set_timesteps raises: leading or trailing)");
    s.recipe = r;
}

inline void parse_lcm(config_keys& k, configured_scheduler& s) {
    s.schedule_config = k.schedule(0.00085, 0.012, "scaled_linear", true);
    scheduler_recipes::discrete r;
    r.k = scheduler_recipes::discrete::kind::lcm;
    r.original_inference_steps = std::size_t(k.integer("original_inference_steps", 50, 1, 1000000));
    k.clipping(r.lcm, false, true);
    r.lcm.set_alpha_to_one = k.boolean("set_alpha_to_one", true);
    (void)k.steps_offset();  // LCM's set_timesteps uses neither the offset nor the spacing
    s.prediction_type = k.prediction_type();
    (void)k.spacing("leading");
    r.lcm.timestep_scaling = k.number_in("timestep_scaling", 10.0, 0.0, 1e300);
    s.recipe = r;
}

// The Euler-family σ-list keys shared by Euler, Heun, KDPM2, KDPM2Ancestral, LMS.
// Every class of the family walks diffusers' trailing list as it is (N + 1 steps where numpy's arange yields N + 1
// values: euler_options::trailing_extra_timestep).
inline void euler_family_sigmas(config_keys& k, configured_scheduler& s, scheduler_recipes::sigma& r, bool spacing_keys,
                                bool beta_sigmas = false) {
    if (spacing_keys) {
        const int sp = k.sigma_spacing(beta_sigmas);
        r.grid.sigma_spacing = sp == 1 ? sigma_spacing_kind::karras : sp == 2 ? sigma_spacing_kind::exponential
                               : sp == 3 ? sigma_spacing_kind::beta : sigma_spacing_kind::none;
    }
    r.grid.trailing_extra_timestep = true;
    // diffusers computes these timesteps by log-σ interpolation with Karras / exponential σ, else linearly in σ
    s.interpolation = r.grid.sigma_spacing == sigma_spacing_kind::none ? discrete_time::interpolation::linear_sigma
                                                                       : discrete_time::interpolation::log_sigma;
}

inline void parse_euler(config_keys& k, configured_scheduler& s) {
    s.schedule_config = k.schedule(1e-4, 0.02, "linear", true);
    scheduler_recipes::sigma r;
    r.k = scheduler_recipes::sigma::kind::euler;
    s.prediction_type = k.prediction_type();
    (void)k.choice("interpolation_type", "linear", {"linear"});  // log_linear is not reproduced
    euler_family_sigmas(k, s, r, true);
    if (const auto v = k.optional_number("sigma_min")) r.grid.sigma_min = *v;
    if (const auto v = k.optional_number("sigma_max")) r.grid.sigma_max = *v;
    r.grid.spacing = k.spacing("linspace");
    (void)k.choice("timestep_type", "discrete", {"discrete"});  // "continuous" (0.25·log σ) needs another network time
    r.grid.steps_offset = k.steps_offset();
    r.grid.final_sigma_min = k.choice("final_sigmas_type", "zero", {"zero", "sigma_min"}) == "sigma_min";
    r.churn.order = churn_order::diffusers;  // step()'s s_churn … (0 here): its churn reads the output as diffusers
    r.churn.diffusers_prediction = s.prediction_type;
    s.recipe = r;
}

inline void parse_euler_ancestral(config_keys& k, configured_scheduler& s) {
    s.schedule_config = k.schedule(1e-4, 0.02, "linear", true);
    scheduler_recipes::sigma r;
    r.k = scheduler_recipes::sigma::kind::euler_ancestral;
    s.prediction_type = k.prediction_type();
    r.grid.spacing = k.spacing("linspace");
    r.grid.steps_offset = k.steps_offset();
    euler_family_sigmas(k, s, r, false);
    s.recipe = r;
}

template <scheduler_recipes::sigma::kind Kind>
void parse_sigma_solver(config_keys& k, configured_scheduler& s) {  // Heun, KDPM2, KDPM2Ancestral, LMS
    const bool lms = Kind == scheduler_recipes::sigma::kind::lms;
    s.schedule_config = k.schedule(lms ? 1e-4 : 0.00085, lms ? 0.02 : 0.012, "linear", false);
    scheduler_recipes::sigma r;
    r.k = Kind;
    s.prediction_type = Kind == scheduler_recipes::sigma::kind::dpm_2_ancestral
                            ? k.prediction_type({"epsilon", "v_prediction"})  // upstream's step has no "sample"
                            : k.prediction_type();
    euler_family_sigmas(k, s, r, true, Kind == scheduler_recipes::sigma::kind::dpm_2_ancestral);  // KDPM2Ancestral: beta σ too
    if (Kind == scheduler_recipes::sigma::kind::heun) {
        k.require_false("clip_sample", "HeunDiscreteScheduler's x̂₀ clipping is not reproduced");
        (void)k.number_in("clip_sample_range", 1.0, 1e-12, 1e300);
    }
    r.grid.spacing = k.spacing("linspace");
    r.grid.steps_offset = k.steps_offset();
    if (Kind == scheduler_recipes::sigma::kind::dpm_2 || Kind == scheduler_recipes::sigma::kind::dpm_2_ancestral)
        s.interpolation = discrete_time::interpolation::linear_sigma;  // the grid points' timesteps (porting.md: KDPM2)
    s.recipe = r;
}

// The solver table keys shared by DPMSolverMultistep, DPMSolverSinglestep, DEIS and UniPC.
inline solver_schedule_options solver_table(config_keys& k, const discrete_schedule_config& sc, bool lu_lambdas) {
    solver_schedule_options t;
    const int sp = k.sigma_spacing();
    const bool lu = lu_lambdas && k.boolean("use_lu_lambdas", false);
    if (lu && sp) k.bad("use_lu_lambdas", "use_lu_lambdas excludes use_karras_sigmas and use_exponential_sigmas");
    t.sigma_spacing = lu ? solver_sigma_spacing::lu_lambdas
                      : sp == 1 ? solver_sigma_spacing::karras
                      : sp == 2 ? solver_sigma_spacing::exponential
                                : solver_sigma_spacing::training;
    t.round_spaced_timesteps = sc.beta_schedule != "squaredcos_cap_v2";  // the config string, as upstream tests it
    return t;
}

// The table keys DPMSolverMultistep and DPMSolverSinglestep share beyond solver_table's: no flow σ, the final σ,
// λ clipping, and no learned variance.
inline void dpm_solver_table_keys(config_keys& k, solver_schedule_options& t) {
    k.no_flow_sigmas();
    t.final_sigma = k.choice("final_sigmas_type", "zero", {"zero", "sigma_min"}) == "zero" ? final_sigma_rule::zero : final_sigma_rule::sigma_min;
    t.lambda_min_clipped = k.number("lambda_min_clipped", -std::numeric_limits<double>::infinity());
    if (std::isnan(t.lambda_min_clipped)) k.bad("lambda_min_clipped", "expected a number, not NaN");
    const auto variance = k.choice("variance_type", "none", {"learned", "learned_range"}, true);
    if (variance != "none") k.bad("variance_type", "\"" + variance + "\" is not supported (wrap the network to return only its prediction)");
}

inline void parse_dpm_multistep(config_keys& k, configured_scheduler& s) {
    s.schedule_config = k.schedule(1e-4, 0.02, "linear", true);
    if (s.schedule_config.rescale_betas_zero_snr)
        k.bad("rescale_betas_zero_snr", "true is not supported (the solver table refuses ᾱ_T = 0)");
    scheduler_recipes::solver r;
    r.k = scheduler_recipes::solver::kind::dpm_multistep;
    auto& o = r.multistep;
    o.solver_order = std::size_t(k.integer("solver_order", 2, 1, 3));
    s.prediction_type = k.prediction_type();
    k.thresholding(o);
    o.algorithm_type = parse_dpm_solver_algorithm(
        k.choice("algorithm_type", "dpmsolver++", {"dpmsolver++", "sde-dpmsolver++", "dpmsolver", "sde-dpmsolver"}));
    o.solver_type = parse_dpm_solver_type(k.choice("solver_type", "midpoint", {"midpoint", "heun"}));
    o.lower_order_final = k.boolean("lower_order_final", true);
    o.euler_at_final = k.boolean("euler_at_final", false);
    r.table = solver_table(k, s.schedule_config, true);
    dpm_solver_table_keys(k, r.table);
    r.table.spacing = k.spacing("linspace");
    r.table.steps_offset = k.steps_offset();
    s.recipe = r;
}

inline void parse_dpm_singlestep(config_keys& k, configured_scheduler& s) {
    s.schedule_config = k.schedule(1e-4, 0.02, "linear", false);
    scheduler_recipes::solver r;
    r.k = scheduler_recipes::solver::kind::dpm_singlestep;
    auto& o = r.singlestep;
    o.solver_order = std::size_t(k.integer("solver_order", 2, 1, 3));
    s.prediction_type = k.prediction_type();
    k.thresholding(o);
    o.algorithm_type = parse_dpm_solver_algorithm(k.choice("algorithm_type", "dpmsolver++", {"dpmsolver++", "sde-dpmsolver++", "dpmsolver"}));
    o.solver_type = parse_dpm_solver_type(k.choice("solver_type", "midpoint", {"midpoint", "heun"}));
    o.lower_order_final = k.boolean("lower_order_final", false);
    r.table = solver_table(k, s.schedule_config, false);
    dpm_solver_table_keys(k, r.table);
    r.table.spacing = timestep_spacing::linspace;  // the singlestep scheduler has no timestep_spacing
    r.table.round_spaced_timesteps = true;         // and rounds its spaced timesteps for every beta schedule
    s.recipe = r;
}

inline void parse_deis(config_keys& k, configured_scheduler& s) {
    s.schedule_config = k.schedule(1e-4, 0.02, "linear", false);
    scheduler_recipes::solver r;
    r.k = scheduler_recipes::solver::kind::deis;
    auto& o = r.deis;
    o.solver_order = std::size_t(k.integer("solver_order", 2, 1, 3));
    s.prediction_type = k.prediction_type();
    k.thresholding(o);
    // diffusers maps dpmsolver / dpmsolver++ to deis and midpoint / heun / bh1 / bh2 to logrho
    (void)k.choice("algorithm_type", "deis", {"deis", "dpmsolver", "dpmsolver++"});
    (void)k.choice("solver_type", "logrho", {"logrho", "midpoint", "heun", "bh1", "bh2"});
    o.lower_order_final = k.boolean("lower_order_final", true);
    r.table = solver_table(k, s.schedule_config, false);
    k.no_flow_sigmas();
    r.table.final_sigma = final_sigma_rule::repeat_last_spaced;
    r.table.round_spaced_timesteps = true;  // DEIS rounds its spaced timesteps for every beta schedule
    r.table.spacing = k.spacing("linspace");
    r.table.steps_offset = k.steps_offset();
    s.recipe = r;
}

inline void parse_unipc(config_keys& k, configured_scheduler& s) {
    s.schedule_config = k.schedule(1e-4, 0.02, "linear", true);
    if (s.schedule_config.rescale_betas_zero_snr)
        k.bad("rescale_betas_zero_snr", "true is not supported (the solver table refuses ᾱ_T = 0)");
    scheduler_recipes::unipc r;
    r.options.solver_order = std::size_t(k.integer("solver_order", 2, 1, 3));
    s.prediction_type = k.prediction_type();
    k.require_false("thresholding", "UniPC's thresholding is not reproduced");
    (void)k.number_in("dynamic_thresholding_ratio", 0.995, 1e-12, 1.0);
    (void)k.number_in("sample_max_value", 1.0, 1.0, 1e300);
    if (!k.boolean("predict_x0", true)) k.bad("predict_x0", "false is not supported (UniPC in the noise form)");
    r.options.solver_type = k.choice("solver_type", "bh2", {"bh1", "bh2"}) == "bh1" ? unipc_variant::bh1 : unipc_variant::bh2;
    r.options.lower_order_final = k.boolean("lower_order_final", true);
    if (const auto* v = k.get("disable_corrector")) {
        if (!v->is_array()) k.bad("disable_corrector", "expected a list of step indices");
        for (const auto& e : v->as_array()) {
            if (!e.is_number() || e.as_number() != std::floor(e.as_number()) || e.as_number() < 0 || e.as_number() > 1e6)
                k.bad("disable_corrector", "expected non-negative integer step indices");
            r.options.disable_corrector.push_back(std::size_t(e.as_number()));
        }
    }
    k.require_null("solver_p", "another solver as UniPC's predictor is not reproduced");
    r.table = solver_table(k, s.schedule_config, false);
    k.no_flow_sigmas();
    r.table.spacing = k.spacing("linspace");
    r.table.steps_offset = k.steps_offset();
    r.table.final_sigma = k.choice("final_sigmas_type", "zero", {"zero", "sigma_min"}) == "zero" ? final_sigma_rule::zero : final_sigma_rule::sigma_min;
    k.require_null("sigma_min", "a σ range other than the training table's is not reproduced");
    k.require_null("sigma_max", "a σ range other than the training table's is not reproduced");
    k.require_null("shift_terminal", "it applies to flow σ only");
    if (r.table.sigma_spacing != solver_sigma_spacing::training) s.interpolation = discrete_time::interpolation::log_sigma;
    s.recipe = r;
}

inline void parse_flow_match_euler(config_keys& k, configured_scheduler& s) {
    scheduler_recipes::flow r;
    auto& c = r.config;
    c.num_train_timesteps = std::size_t(k.integer("num_train_timesteps", 1000, 1, 1000000));
    c.shift = k.number_in("shift", 1.0, 1e-12, 1e300);
    c.use_dynamic_shifting = k.boolean("use_dynamic_shifting", false);
    r.base_shift = k.number("base_shift", 0.5);
    r.max_shift = k.number("max_shift", 1.15);
    r.base_image_seq_len = double(k.integer("base_image_seq_len", 256, 0, std::int64_t(1) << 40));
    r.max_image_seq_len = double(k.integer("max_image_seq_len", 4096, 0, std::int64_t(1) << 40));
    if (r.max_image_seq_len == r.base_image_seq_len) k.bad("max_image_seq_len", "must differ from base_image_seq_len");
    // the inverted grid (Mochi) starts at s = 0, the clean state, where the stepper's x̂₀ for an observer is undefined
    k.require_false("invert_sigmas", "the inverted grid starts at s = 0, where the flow step's x0 for an observer is undefined");
    if (const auto v = k.optional_number("shift_terminal")) {
        if (!(*v < 1)) k.bad("shift_terminal", "expected a number below 1");
        c.shift_terminal = *v;
    }
    const bool karras = k.boolean("use_karras_sigmas", false), exponential = k.boolean("use_exponential_sigmas", false),
               beta = k.boolean("use_beta_sigmas", false);
    if (int(karras) + int(exponential) + int(beta) > 1) k.bad("use_beta_sigmas", "only one of use_karras_sigmas, use_exponential_sigmas, use_beta_sigmas");
    c.sigma_spacing = karras ? flow_sigma_spacing::karras : exponential ? flow_sigma_spacing::exponential
                      : beta ? flow_sigma_spacing::beta : flow_sigma_spacing::none;
    c.time_shift_type = parse_time_shift_kind(k.choice("time_shift_type", "exponential", {"exponential", "linear"}));
    r.stochastic_sampling = k.boolean("stochastic_sampling", false);
    s.prediction_type = prediction::flow_velocity;
    s.recipe = r;
}

inline void parse_tcd(config_keys& k, configured_scheduler& s) {
    s.schedule_config = k.schedule(0.00085, 0.012, "scaled_linear", true);
    scheduler_recipes::discrete r;
    r.k = scheduler_recipes::discrete::kind::tcd;
    r.original_inference_steps = std::size_t(k.integer("original_inference_steps", 50, 1, 1000000));
    // TCDScheduler takes and never reads these (its step has no clipping, thresholding or final ᾱ; its
    // set_timesteps no spacing or offset): type-checked only
    lcm_options unread;
    k.clipping(unread, false, true);
    (void)k.boolean("set_alpha_to_one", true);
    (void)k.steps_offset();
    s.prediction_type = k.prediction_type();
    (void)k.spacing("leading");
    (void)k.number_in("timestep_scaling", 10.0, 0.0, 1e300);
    s.recipe = r;  // eta: step()'s argument, 0.3 (tcd_options)
}

// The keys EDMEulerScheduler and EDMDPMSolverMultistepScheduler share, in their order (final_sigmas_type last).
inline scheduler_recipes::edm edm_table_keys(config_keys& k, configured_scheduler& s) {
    scheduler_recipes::edm r;
    auto& t = r.table;
    t.sigma_min = k.number_in("sigma_min", 0.002, 1e-300, 1e300);
    t.sigma_max = k.number_in("sigma_max", 80.0, 1e-300, 1e300);
    if (!(t.sigma_max > t.sigma_min)) k.bad("sigma_max", "must exceed sigma_min");
    r.sigma_data = k.number_in("sigma_data", 0.5, 1e-300, 1e300);
    t.sigma_schedule = parse_edm_sigma_schedule(k.choice("sigma_schedule", "karras", {"karras", "exponential"}));
    (void)k.integer("num_train_timesteps", 1000, 1, 1000000);  // the 1000-point table of __init__ only
    // precondition_outputs has no "sample" (upstream raises)
    r.output = parse_prediction(k.choice("prediction_type", "epsilon", {"epsilon", "v_prediction"}));
    s.prediction_type = r.output;
    t.rho = k.number_in("rho", 7.0, 1e-6, 1e6);
    return r;
}

inline void parse_edm_euler(config_keys& k, configured_scheduler& s) {
    auto r = edm_table_keys(k, s);
    r.table.final_sigma = edm_final_sigma(k.choice("final_sigmas_type", "zero", {"zero", "sigma_min"}), edm_scheduler::euler);
    s.recipe = r;
}

inline void parse_edm_dpm_multistep(config_keys& k, configured_scheduler& s) {
    auto r = edm_table_keys(k, s);
    r.k = scheduler_recipes::edm::kind::dpm_multistep;
    auto& o = r.multistep;
    o.solver_order = std::size_t(k.integer("solver_order", 2, 1, 3));
    k.thresholding(o);
    // upstream maps deis to dpmsolver++ and logrho / bh1 / bh2 to midpoint, and refuses the rest
    const auto algorithm = k.choice("algorithm_type", "dpmsolver++", {"dpmsolver++", "sde-dpmsolver++", "deis"});
    o.algorithm_type = parse_dpm_solver_algorithm(algorithm == "deis" ? "dpmsolver++" : algorithm);
    const auto solver = k.choice("solver_type", "midpoint", {"midpoint", "heun", "logrho", "bh1", "bh2"});
    o.solver_type = parse_dpm_solver_type(solver == "heun" ? "heun" : "midpoint");
    if (o.algorithm_type == dpm_solver_algorithm::sde_dpmsolver_pp && o.solver_order == 3)
        k.bad("solver_order", "3 with sde-dpmsolver++ is not supported (upstream has no third-order SDE update: its step raises)");
    o.lower_order_final = k.boolean("lower_order_final", true);
    o.euler_at_final = k.boolean("euler_at_final", false);
    r.table.final_sigma =
        edm_final_sigma(k.choice("final_sigmas_type", "zero", {"zero", "sigma_min"}), edm_scheduler::dpm_solver_multistep);
    if (algorithm == "deis" && r.table.final_sigma == final_sigma_rule::zero)  // upstream tests the name it was given
        k.bad("final_sigmas_type", "\"zero\" with algorithm_type \"deis\" is refused upstream (it raises: use sigma_min)");
    s.recipe = r;
}

inline void parse_flow_match_heun(config_keys& k, configured_scheduler& s) {
    scheduler_recipes::flow r;
    r.k = scheduler_recipes::flow::kind::heun;
    r.config.num_train_timesteps = std::size_t(k.integer("num_train_timesteps", 1000, 1, 1000000));
    r.config.shift = k.number_in("shift", 1.0, 1e-12, 1e300);
    s.prediction_type = prediction::flow_velocity;
    s.recipe = r;
}

struct scheduler_class {
    std::string_view name;
    void (*parse)(config_keys&, configured_scheduler&);
};

// The supported classes. KDPM2AncestralDiscreteScheduler: dpm_2_ancestral_stepper with the network timesteps of
// kdpm2_ancestral_sigmas (the grid points' spacing timesteps, the midpoints' log-σ ones: no σ → t rule gives
// both). Its earlier mismatches (5e-4 to 1.9e-2 in some 3-step, cosine or steep-table draws) were upstream's
// float32 σ_down = √(σ_{i+1}² − σ_up²), which cancels where σ_{i+1} ≪ σ_i and moves σ_interpol off the exact
// midpoint (or to NaN); the library steps in double, and the golden generators draw such configurations again
// (gen_sampler_golden_discrete_extras.py, gen_scheduler_config_golden.py: the same rule). PNDM, IPNDM,
// SASolver, DPMSolverSDE (torchsde's Brownian tree), CMStochasticIterative and ScoreSdeVe (their networks are
// not discrete-timestep ones) are not read from a config.
inline const std::vector<scheduler_class>& scheduler_classes() {
    using sk = scheduler_recipes::sigma::kind;
    static const std::vector<scheduler_class> table = {
        {"DDPMScheduler", parse_ddpm},
        {"DDIMScheduler", parse_ddim},
        {"DDIMInverseScheduler", parse_ddim_inverse},
        {"LCMScheduler", parse_lcm},
        {"EulerDiscreteScheduler", parse_euler},
        {"EulerAncestralDiscreteScheduler", parse_euler_ancestral},
        {"HeunDiscreteScheduler", parse_sigma_solver<sk::heun>},
        {"KDPM2DiscreteScheduler", parse_sigma_solver<sk::dpm_2>},
        {"KDPM2AncestralDiscreteScheduler", parse_sigma_solver<sk::dpm_2_ancestral>},
        {"LMSDiscreteScheduler", parse_sigma_solver<sk::lms>},
        {"DPMSolverMultistepScheduler", parse_dpm_multistep},
        {"DPMSolverSinglestepScheduler", parse_dpm_singlestep},
        {"DEISMultistepScheduler", parse_deis},
        {"UniPCMultistepScheduler", parse_unipc},
        {"FlowMatchEulerDiscreteScheduler", parse_flow_match_euler},
        {"FlowMatchHeunDiscreteScheduler", parse_flow_match_heun},
        {"TCDScheduler", parse_tcd},
        {"EDMEulerScheduler", parse_edm_euler},
        {"EDMDPMSolverMultistepScheduler", parse_edm_dpm_multistep},
    };
    return table;
}

}  // namespace detail

// The class names scheduler_from_config reads.
[[nodiscard]] inline std::vector<std::string> supported_scheduler_classes() {
    std::vector<std::string> out;
    for (const auto& c : detail::scheduler_classes()) out.emplace_back(c.name);
    return out;
}

// A diffusers scheduler_config.json (its parsed JSON object) as a configured sampler; see the top of this file.
[[nodiscard]] inline configured_scheduler scheduler_from_config(const io::json_value& root) {
    constexpr std::string_view where = "scheduler_from_config";
    if (!root.is_object()) detail::fail(where, "a scheduler config is a JSON object");
    const auto* name = root.find("_class_name");
    if (!name || !name->is_string()) detail::fail(where, "_class_name: missing or not a string (the scheduler's class)");
    const auto& classes = detail::scheduler_classes();
    const detail::scheduler_class* cls = nullptr;
    for (const auto& c : classes)
        if (c.name == name->as_string()) cls = &c;
    if (!cls) {
        std::string names;
        for (const auto& c : classes) names += (names.empty() ? "" : ", ") + std::string(c.name);
        detail::fail(where, "_class_name: \"" + name->as_string() + "\" is not a supported scheduler (" + names + ")");
    }
    configured_scheduler s;
    s.class_name = name->as_string();
    detail::config_keys keys(root, s.class_name);
    cls->parse(keys, s);
    s.ignored_keys = keys.ignored();
    if (!s.is_flow() && !s.is_edm()) {
        try {
            s.schedule = discrete_schedule::from_config(s.schedule_config);
        } catch (const diffuse::error& e) {
            detail::fail(where, s.class_name + ": the training schedule (num_train_timesteps, beta_*, trained_betas): " + e.what());
        }
    }
    return s;
}

// The limits a scheduler_config.json is parsed with: Python's -Infinity (DPM-Solver's lambda_min_clipped) allowed.
[[nodiscard]] inline io::json_limits scheduler_config_json_limits() {
    io::json_limits lim;
    lim.max_size = std::size_t(16) << 20;
    lim.allow_nonfinite_numbers = true;
    return lim;
}

// scheduler_from_config of the file at path (at most 16 MB; errors name the file).
[[nodiscard]] inline configured_scheduler scheduler_from_config_file(const std::string& path) {
    try {
        return scheduler_from_config(io::read_json_file(path, scheduler_config_json_limits()));
    } catch (const diffuse::error& e) {
        detail::fail("scheduler_from_config_file", path + ": " + e.what());
    }
}

}  // namespace diffuse
