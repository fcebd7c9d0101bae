#pragma once
// The sampling-spec runner behind `diffuse sample SPEC.json OUT.npy` and the golden parity test.
// The spec format is documented in docs/cli.md. Every defect in a spec raises spec_error whose message is one
// line naming the field ("spec.schedule.beta_start: expected a number").
//
// The samplers come in three families, one runner each, sharing the spec reader (shape, schedule, denoiser,
// initial state, noise, grid): the discrete VP samplers (DDPM, DDIM, DDIM inversion) walk the schedule's
// timesteps; the σ-space samplers (Euler … UniPC, annealed Langevin) walk a σ grid; the score_sde samplers
// walk the continuous time of an SDE. Adding a sampler: one line in sampler_table() naming its family, and
// its option reading in the family's runner.

#include <cmath>
#include <cstdio>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <span>
#include <type_traits>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "diffuse/adapt/std.hpp"
#include "diffuse/core/fill_normal.hpp"
#include "diffuse/io/json.hpp"
#include "diffuse/io/npy.hpp"
#include "diffuse/samplers/analytic.hpp"
#include "diffuse/samplers/brownian.hpp"
#include "diffuse/samplers/ddim.hpp"
#include "diffuse/samplers/ddpm.hpp"
#include "diffuse/samplers/dpm_solver.hpp"
#include "diffuse/samplers/euler.hpp"
#include "diffuse/samplers/lms.hpp"
#include "diffuse/samplers/noise_source.hpp"
#include "diffuse/samplers/ode.hpp"
#include "diffuse/samplers/prior.hpp"
#include "diffuse/samplers/sde.hpp"
#include "diffuse/samplers/unipc.hpp"
#include "diffuse/schedules/beta.hpp"
#include "diffuse/schedules/continuous.hpp"
#include "diffuse/schedules/sigmas.hpp"
#include "diffuse/schedules/timesteps.hpp"
#include "diffuse/guidance/cfg.hpp"
#include "unet_denoiser.hpp"

namespace diffuse::cli {

struct spec_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// An object's fields read by name; every read names its path in errors, unknown keys are rejected.
class fields {
public:
    fields(const io::json_value* v, std::string path) : v_(v), path_(std::move(path)) {
        if (v_ && !v_->is_object()) throw spec_error(path_ + ": expected an object");
    }
    [[nodiscard]] const std::string& path() const noexcept { return path_; }
    [[nodiscard]] bool has(std::string_view k) const { return v_ && v_->find(k); }
    [[nodiscard]] const io::json_value* raw(std::string_view k) {
        used_.insert(std::string(k));
        return v_ ? v_->find(k) : nullptr;
    }
    [[nodiscard]] std::string name(std::string_view k) const { return path_ + "." + std::string(k); }

    double number(std::string_view k, std::optional<double> def = {}) {
        const auto* v = raw(k);
        if (!v) return required(k, def);
        if (!v->is_number()) throw spec_error(name(k) + ": expected a number");
        return v->as_number();
    }
    // A number within [lo, hi].
    double number_in(std::string_view k, double lo, double hi, std::optional<double> def = {}) {
        const double x = number(k, def);
        if (!(x >= lo && x <= hi)) {
            std::ostringstream s;
            s << name(k) << ": " << x << " is outside [" << lo << ", " << hi << "]";
            throw spec_error(s.str());
        }
        return x;
    }
    std::uint64_t count(std::string_view k, std::optional<std::uint64_t> def = {}, std::uint64_t lo = 0) {
        const auto* v = raw(k);
        if (!v) return required(k, def);
        std::uint64_t x = 0;
        try {
            x = v->as_uint64();
        } catch (const std::exception&) {
            throw spec_error(name(k) + ": expected a non-negative integer");
        }
        if (x < lo) throw spec_error(name(k) + ": " + std::to_string(x) + " is below the minimum " + std::to_string(lo));
        return x;
    }
    bool boolean(std::string_view k, std::optional<bool> def = {}) {
        const auto* v = raw(k);
        if (!v) return required(k, def);
        if (!v->is_bool()) throw spec_error(name(k) + ": expected true or false");
        return v->as_bool();
    }
    std::string string(std::string_view k, std::optional<std::string> def = {}) {
        const auto* v = raw(k);
        if (!v) return required(k, def);
        if (!v->is_string()) throw spec_error(name(k) + ": expected a string");
        return v->as_string();
    }
    // One of the listed names.
    std::string choice(std::string_view k, std::initializer_list<std::string_view> names, std::optional<std::string> def = {}) {
        const auto s = string(k, def);
        std::string list;
        for (auto n : names) {
            if (s == n) return s;
            list += (list.empty() ? "" : ", ") + std::string(n);
        }
        throw spec_error(name(k) + ": \"" + s + "\" is not one of {" + list + "}");
    }
    std::vector<double> numbers(std::string_view k, std::optional<std::vector<double>> def = {}) {
        const auto* v = raw(k);
        if (!v) return required(k, def);
        if (!v->is_array()) throw spec_error(name(k) + ": expected an array of numbers");
        std::vector<double> out;
        for (const auto& e : v->as_array()) {
            if (e.is_number()) out.push_back(e.as_number());
            else if (e.is_array())
                for (const auto& f : e.as_array()) {
                    if (!f.is_number()) throw spec_error(name(k) + ": expected numbers");
                    out.push_back(f.as_number());
                }
            else throw spec_error(name(k) + ": expected an array of numbers");
        }
        return out;
    }
    fields object(std::string_view k) {
        const auto* v = raw(k);
        return fields(v, name(k));
    }
    // Throws on keys nobody read (typos).
    void finish() const {
        if (!v_) return;
        for (const auto& [key, value] : v_->as_object())
            if (!used_.count(key)) throw spec_error(name(key) + ": unknown field");
    }

private:
    template <class V>
    V required(std::string_view k, const std::optional<V>& def) const {
        if (!def) throw spec_error(name(k) + ": missing (required)");
        return *def;
    }
    const io::json_value* v_;
    std::string path_;
    std::set<std::string> used_;
};

// A noise source: the counter generator, a recording (.npy of [draws, batch, ...]) or, for the SDE samplers
// of the σ family, a Brownian tree (queried by noise-level interval).
struct spec_noise {
    std::optional<recorded_noise> recorded;
    counter_noise counter;
    brownian_tree_noise* tree = nullptr;
    template <class V>
    void operator()(const V& out, std::uint64_t draw) const {
        if (recorded) (*recorded)(out, draw);
        else counter(out, draw);
    }
    template <class V>
    void operator()(const V& out, std::uint64_t draw, std::span<const double> from, std::span<const double> to) const {
        if (tree) (*tree)(out, draw, from, to);
        else (*this)(out, draw);
    }
};

// The network time of a discrete-schedule network driven by σ: the schedule's interpolation, or (with a
// timestep table) the timestep the reference fed the network at that σ, for schedulers whose σ → t rule
// varies between steps (diffusers' KDPM2: linear-σ grid points, log-σ midpoints).
struct spec_discrete_time {
    discrete_time base;
    std::vector<double> table_sigma, table_t;
    [[nodiscard]] network_time operator()(double alpha, double sigma) const {
        if (table_sigma.empty()) return base(alpha, sigma);
        const double s = sigma / alpha;
        std::size_t best = 0;
        for (std::size_t i = 1; i < table_sigma.size(); ++i)
            if (std::abs(table_sigma[i] - s) < std::abs(table_sigma[best] - s)) best = i;
        if (!(std::abs(table_sigma[best] - s) <= 1e-5 * s))
            diffuse::detail::fail("spec.denoiser.timestep_table", "no timestep recorded for sigma " + std::to_string(s));
        return {table_t[best], 1.0 / std::sqrt(1.0 + s * s)};
    }
    [[nodiscard]] double alpha_at(double t) const { return base.alpha_at(t); }
};

// Everything a sampler runner needs.
template <class T>
struct run {
    std::string sampler;
    fields& opts;                           // spec.options
    fields& spec;                           // the whole spec (for rarely used top-level fields)
    fields& grid;                           // spec.grid (may be absent)
    fields& sde;                            // spec.sde (may be absent)
    discrete_schedule schedule;
    std::vector<std::int64_t> timesteps;    // descending, from the spec's spacing
    std::size_t num_inference_steps;
    std::int64_t steps_offset;
    timestep_spacing spacing;
    std::optional<gaussian_mixture> data;  // the analytic denoiser, or
    std::shared_ptr<spec_unet> unet;       // the U-Net of a model folder
    prediction pred;
    std::vector<T>& x;
    std::size_t batch;
    spec_noise& noise;
    std::function<void(const step_info<T>&)> observer;
    std::optional<double> learned_variance;
    std::string time_kind;                  // denoiser.time: discrete, sigma or sde
    spec_discrete_time dtime;
    bool init_from_file;
    std::uint64_t seed;
    std::optional<std::size_t> nfe;         // model calls, for samplers that report them

    [[nodiscard]] auto x_view() { return batched(x, batch); }
    [[nodiscard]] const io::scheduler_config* scheduler() const { return unet && unet->sched ? &*unet->sched : nullptr; }
    // f(m), or f(cfg_model(m)) when the spec asks for classifier-free guidance.
    template <class M, class F>
    void guided(M& m, F&& f) {
        if (unet && unet->guidance_scale) {
            cfg_model<M> g(m, *unet->guidance_scale, unet->guidance_rescale);
            f(g);
        } else {
            f(m);
        }
    }
    // Calls f(model) with the denoiser on the schedule's discrete timesteps (DDPM, DDIM).
    template <class F>
    void with_discrete_model(F&& f) {
        if (unet) {
            model<nn::unet2d_network, discrete_time> m(unet->network(), pred, dtime.base);
            guided(m, f);
            return;
        }
        auto m = analytic_model(*data, pred, dtime.base);
        if (learned_variance) m.net().learned_variance = *learned_variance;
        f(m);
    }
    // Calls f(model) with the denoiser read through its declared time (σ-space samplers: discrete or sigma).
    template <class F>
    void with_sigma_model(F&& f) {
        if (unet) {
            if (time_kind != "discrete")
                throw spec_error("spec.denoiser.time: a unet2d denoiser is a discrete-time network (time \"discrete\")");
            model<nn::unet2d_network, spec_discrete_time> m(unet->network(), pred, dtime);
            guided(m, f);
        } else if (time_kind == "sigma") {
            auto m = analytic_model(*data, pred, sigma_time{});
            f(m);
        } else if (time_kind == "discrete") {
            analytic_denoiser<discrete_clock> net(*data, pred, discrete_clock{dtime.base});
            if (learned_variance) net.learned_variance = *learned_variance;
            model<analytic_denoiser<discrete_clock>, spec_discrete_time> m(std::move(net), pred, dtime);
            f(m);
        } else {
            throw spec_error("spec.denoiser.time: \"" + time_kind + "\" cannot drive sampler " + sampler +
                             " (use discrete or sigma)");
        }
    }
    // Row b of x times s_b (the initial state σ_0·z of a σ-space sampler when no init_noise is given).
    void scale_rows(const time_grid& g) {
        const std::size_t per = x.size() / batch;
        for (std::size_t b = 0; b < batch; ++b)
            for (std::size_t j = 0; j < per; ++j) x[b * per + j] = static_cast<T>(double(x[b * per + j]) * g(0, b));
    }
};

namespace detail {
inline std::vector<double> read_npy_checked(const std::filesystem::path& p, const std::string& field, std::size_t multiple_of) {
    io::npy_array a;
    try {
        a = io::read_npy(p.string());
    } catch (const std::exception& e) {
        throw spec_error(field + ": " + e.what());
    }
    if (a.dtype != "<f4" && a.dtype != "<f8") throw spec_error(field + ": " + p.string() + " must hold float32 or float64");
    if (a.size() == 0 || a.size() % multiple_of != 0)
        throw spec_error(field + ": " + p.string() + " holds " + std::to_string(a.size()) + " values, not a positive multiple of " +
                         std::to_string(multiple_of));
    return a.as<double>();
}

// Clipping options; defaults from the model folder's scheduler_config.json when there is one.
inline void read_clipping(fields& o, sample_clipping& c, bool default_clip, const io::scheduler_config* sched = nullptr) {
    c.clip_sample = o.boolean("clip_sample", sched ? sched->clip_sample : default_clip);
    c.clip_sample_range = o.number_in("clip_sample_range", 1e-12, 1e300, sched ? sched->clip_sample_range : 1.0);
    c.thresholding = o.boolean("thresholding", sched ? sched->thresholding : false);
    c.dynamic_thresholding_ratio = o.number_in("dynamic_thresholding_ratio", 1e-12, 1.0, sched ? sched->dynamic_thresholding_ratio : 0.995);
    c.sample_max_value = o.number_in("sample_max_value", 1.0, 1e300, sched ? sched->sample_max_value : 1.0);
}
}  // namespace detail

struct ddpm_runner {
    static constexpr std::string_view family = "discrete";
    template <class T>
    void operator()(run<T>& r) const {
        ddpm_options o;
        const auto* sched = r.scheduler();
        detail::read_clipping(r.opts, o, true, sched);
        o.variance_type = parse_ddpm_variance(r.opts.choice(
            "variance_type", {"fixed_small", "fixed_small_log", "fixed_large", "learned", "learned_range"},
            sched ? sched->variance_type : "fixed_small"));
        r.with_discrete_model([&](auto& m) {
            sample_ddpm(m, r.x_view(), r.schedule.alphas_cumprod, discrete_grid(r.timesteps), o, r.noise, r.observer);
        });
    }
};

struct ddim_runner {
    static constexpr std::string_view family = "discrete";
    template <class T>
    void operator()(run<T>& r) const {
        ddim_options o;
        const auto* sched = r.scheduler();
        detail::read_clipping(r.opts, o, true, sched);
        o.eta = r.opts.number_in("eta", 0.0, 1e300, 0.0);
        o.use_clipped_model_output = r.opts.boolean("use_clipped_model_output", false);
        o.set_alpha_to_one = r.opts.boolean("set_alpha_to_one", sched ? sched->set_alpha_to_one : true);
        o.prev_timestep = r.opts.choice("prev_timestep", {"next_in_list", "fixed_stride"}, "next_in_list") == "fixed_stride"
                              ? prev_timestep_rule::fixed_stride
                              : prev_timestep_rule::next_in_list;
        o.num_inference_steps = r.num_inference_steps;
        r.with_discrete_model([&](auto& m) {
            sample_ddim(m, r.x_view(), r.schedule.alphas_cumprod, discrete_grid(r.timesteps), o, r.noise, r.observer);
        });
    }
};

struct ddim_inverse_runner {
    static constexpr std::string_view family = "discrete";
    template <class T>
    void operator()(run<T>& r) const {
        ddim_inverse_options o;
        o.clip_sample = r.opts.boolean("clip_sample", false);
        o.clip_sample_range = r.opts.number_in("clip_sample_range", 1e-12, 1e300, 1.0);
        o.set_alpha_to_one = r.opts.boolean("set_alpha_to_one", true);
        o.model_at_target = r.opts.boolean("model_at_target", false);
        std::vector<double> g;
        if (o.model_at_target) g.push_back(-1.0);  // the clean start: ᾱ = 1 (or ᾱ_0)
        for (auto it = r.timesteps.rbegin(); it != r.timesteps.rend(); ++it) g.push_back(double(*it));
        r.with_discrete_model([&](auto& m) { sample_ddim_inverse(m, r.x_view(), r.schedule.alphas_cumprod, time_grid(g), o, r.observer); });
    }
};

namespace detail {
inline constexpr double inf = std::numeric_limits<double>::infinity();

// spec.grid: the time points a σ-space or SDE sampler walks, num_inference_steps + 1 of them (k-diffusion's
// get_sigmas_* names, diffusers' Euler-family σ list of the schedule, an explicit list). Returns nothing for
// "score_sde", which the SDE runner builds from its SDE.
template <class T>
std::optional<time_grid> read_grid(run<T>& r, std::string_view default_type, std::initializer_list<std::string_view> types,
                                   const std::filesystem::path& dir) {
    auto& g = r.grid;
    const auto type = g.choice("type", types, std::string(default_type));
    const std::size_t n = r.num_inference_steps;
    std::vector<double> p;
    std::size_t rows = 1;
    try {
        if (type == "karras") {
            const double lo = g.number("sigma_min"), hi = g.number("sigma_max");
            p = karras_sigmas(n, lo, hi, g.number("rho", 7.0));
        } else if (type == "exponential") {
            const double lo = g.number("sigma_min"), hi = g.number("sigma_max");
            p = exponential_sigmas(n, lo, hi);
        } else if (type == "polyexponential") {
            const double lo = g.number("sigma_min"), hi = g.number("sigma_max");
            p = polyexponential_sigmas(n, lo, hi, g.number("rho", 1.0));
        } else if (type == "vp") {
            const double bd = g.number("beta_d", 19.9), bm = g.number("beta_min", 0.1);
            p = vp_sigmas(n, bd, bm, g.number("eps_s", 1e-3));
        } else if (type == "discrete") {
            p = discrete_sigmas_list(discrete_sigmas(r.schedule.alphas_cumprod), n);
        } else if (type == "diffusers") {
            euler_options o;
            o.spacing = r.spacing;
            o.steps_offset = r.steps_offset;
            const bool karras = g.boolean("use_karras_sigmas", false), expo = g.boolean("use_exponential_sigmas", false);
            if (karras && expo) throw spec_error(g.name("use_exponential_sigmas") + ": cannot be combined with use_karras_sigmas");
            o.sigma_spacing = karras ? sigma_spacing_kind::karras : expo ? sigma_spacing_kind::exponential : sigma_spacing_kind::none;
            if (g.has("sigma_min")) o.sigma_min = g.number("sigma_min");
            if (g.has("sigma_max")) o.sigma_max = g.number("sigma_max");
            o.final_sigma_min = g.choice("final_sigmas_type", {"zero", "sigma_min"}, "zero") == "sigma_min";
            p = euler_discrete_sigmas(r.schedule, n, o).sigmas;
        } else if (type == "linspace") {
            const double a = g.number("start"), b = g.number("end");
            p.resize(n + 1);
            for (std::size_t i = 0; i <= n; ++i) p[i] = i == n ? b : a + double(i) * ((b - a) / double(n));
        } else if (type == "file") {
            p = read_npy_checked(dir / g.string("path"), g.name("path"), n + 1);
            rows = p.size() / (n + 1);
            if (rows != 1 && rows != r.batch)
                throw spec_error(g.name("path") + ": expected num_inference_steps + 1 = " + std::to_string(n + 1) +
                                 " points, or one row of them per sample");
        } else {
            return std::nullopt;
        }
        return time_grid(std::move(p), rows);
    } catch (const diffuse::error& e) {
        throw spec_error(g.path() + ": " + e.what());
    }
}

// Options shared by several samplers, read once.
inline churn_options read_churn(fields& o) {
    churn_options c;
    c.s_churn = o.number_in("s_churn", 0.0, inf, 0.0);
    c.s_tmin = o.number_in("s_tmin", 0.0, inf, 0.0);
    c.s_tmax = o.number_in("s_tmax", 0.0, inf, inf);
    c.s_noise = o.number_in("s_noise", 0.0, inf, 1.0);
    c.noise_every_step = o.boolean("noise_every_step", false);
    return c;
}
inline void read_eta_noise(fields& o, double& eta, double& s_noise) {
    eta = o.number_in("eta", 0.0, inf, 1.0);
    s_noise = o.number_in("s_noise", 0.0, inf, 1.0);
}
inline dpm_solver_type read_solver_type(fields& o) {
    return parse_dpm_solver_type(o.choice("solver_type", {"midpoint", "heun"}, "midpoint"));
}

template <class T, class M>
void run_sigma_sampler(run<T>& r, M& m, const time_grid& g) {
    auto& o = r.opts;
    const auto& s = r.sampler;
    const auto x = r.x_view();
    auto& nz = r.noise;
    auto& obs = r.observer;
    if (s == "euler") sample_euler(m, x, g, read_churn(o), nz, obs);
    else if (s == "heun") sample_heun(m, x, g, read_churn(o), nz, obs);
    else if (s == "dpm_2") sample_dpm_2(m, x, g, read_churn(o), nz, obs);
    else if (s == "euler_ancestral" || s == "dpm_2_ancestral") {
        ancestral_options a;
        read_eta_noise(o, a.eta, a.s_noise);
        if (s == "euler_ancestral") sample_euler_ancestral(m, x, g, a, nz, obs);
        else sample_dpm_2_ancestral(m, x, g, a, nz, obs);
    } else if (s == "lms") {
        sample_lms(m, x, g, lms_options{o.count("order", 4, 1)}, obs);
    } else if (s == "dpmpp_2m") {
        dpmpp_2m_options d;
        d.solver_type = read_solver_type(o);
        d.lower_order_final = o.boolean("lower_order_final", true);
        d.euler_at_final = o.boolean("euler_at_final", false);
        sample_dpmpp_2m(m, x, g, d, obs);
    } else if (s == "dpmpp_2s_ancestral" || s == "dpmpp_sde") {
        dpmpp_sde_options d;
        read_eta_noise(o, d.eta, d.s_noise);
        if (s == "dpmpp_sde") {
            d.r = o.number_in("r", 0.0, 1.0, 0.5);
            sample_dpmpp_sde(m, x, g, d, nz, obs);
        } else {
            sample_dpmpp_2s_ancestral(m, x, g, d, nz, obs);
        }
    } else if (s == "dpmpp_2m_sde") {
        dpmpp_2m_sde_options d;
        read_eta_noise(o, d.eta, d.s_noise);
        d.solver_type = read_solver_type(o);
        d.lower_order_final = o.boolean("lower_order_final", true);
        d.euler_at_final = o.boolean("euler_at_final", false);
        sample_dpmpp_2m_sde(m, x, g, d, nz, obs);
    } else if (s == "dpmpp_3m_sde") {
        dpmpp_3m_sde_options d;
        read_eta_noise(o, d.eta, d.s_noise);
        sample_dpmpp_3m_sde(m, x, g, d, nz, obs);
    } else if (s == "unipc") {
        unipc_options u;
        u.solver_order = o.count("solver_order", 2, 1);
        u.solver_type = o.choice("solver_type", {"bh1", "bh2"}, "bh2") == "bh1" ? unipc_variant::bh1 : unipc_variant::bh2;
        u.lower_order_final = o.boolean("lower_order_final", true);
        for (double v : o.numbers("disable_corrector", std::vector<double>{})) {
            if (!(v >= 0 && v == std::floor(v) && v < 1e9)) throw spec_error(o.name("disable_corrector") + ": expected step indices");
            u.disable_corrector.push_back(std::size_t(v));
        }
        sample_unipc(m, x, g, u, obs);
    } else if (s == "annealed_langevin") {
        annealed_langevin_options a;
        a.step_lr = o.number_in("step_lr", 0.0, inf, a.step_lr);
        a.n_steps_each = o.count("n_steps_each", a.n_steps_each, 1);
        a.denoise = o.boolean("denoise", false);
        sample_annealed_langevin(m, x, g, a, nz, obs);
    } else {
        throw spec_error("spec.sampler: \"" + s + "\" has no σ-space runner");
    }
}
}  // namespace detail

// σ-space samplers on a σ grid (spec.grid, default: the schedule's diffusers Euler σ list). The SDE solvers
// of DPM-Solver++ draw from a Brownian tree over the grid's σ range unless spec.step_noise replays noise.
struct sigma_runner {
    static constexpr std::string_view family = "sigma";
    template <class T>
    void operator()(run<T>& r, const std::filesystem::path& dir) const {
        const auto grid = *detail::read_grid(
            r, "diffusers", {"diffusers", "karras", "exponential", "polyexponential", "vp", "discrete", "linspace", "file"}, dir);
        if (!r.init_from_file) r.scale_rows(grid);
        std::optional<brownian_tree_noise> tree;
        if (r.sampler == "dpmpp_sde" || r.sampler == "dpmpp_2m_sde" || r.sampler == "dpmpp_3m_sde") {
            const bool recorded = r.noise.recorded.has_value();
            const auto kind = r.opts.choice("noise_sampler", {"brownian_tree", "counter"}, recorded ? "counter" : "brownian_tree");
            if (kind == "brownian_tree") {
                if (recorded) throw spec_error(r.opts.name("noise_sampler") + ": brownian_tree cannot replay spec.step_noise");
                double lo = detail::inf, hi = 0;
                for (std::size_t b = 0; b < grid.rows(); ++b)
                    for (std::size_t i = 0; i <= grid.steps(); ++i) {
                        const double v = grid(i, b);
                        if (v > 0) lo = std::min(lo, v);
                        hi = std::max(hi, v);
                    }
                tree.emplace(r.seed, lo, hi);
                r.noise.tree = &*tree;
            }
        }
        r.with_sigma_model([&](auto& m) { detail::run_sigma_sampler(r, m, grid); });
        r.noise.tree = nullptr;
    }
};

// score_sde samplers on a VP, sub-VP or VE SDE (spec.sde), on the SDE's own time (spec.grid, default
// score_sde's linspace(T, eps, N) and an end point 0).
struct sde_runner {
    static constexpr std::string_view family = "sde";
    template <class T>
    void operator()(run<T>& r, const std::filesystem::path& dir) const {
        if (r.time_kind != "sde")
            throw spec_error("spec.denoiser.time: sampler " + r.sampler + " needs \"sde\" (the network reads the SDE's time)");
        auto& sf = r.sde;
        const auto type = sf.choice("type", {"vp", "subvp", "ve"}, "vp");
        const auto N = static_cast<std::size_t>(sf.count("N", r.num_inference_steps, 1));
        auto make = [&](auto tag) {
            using Sde = typename decltype(tag)::type;
            try {
                if constexpr (std::is_same_v<Sde, ve_sde>) {
                    const double lo = sf.number("sigma_min", 0.01);
                    return Sde(lo, sf.number("sigma_max", 50.0), N);
                } else {
                    const double lo = sf.number("beta_min", 0.1);
                    return Sde(lo, sf.number("beta_max", 20.0), N);
                }
            } catch (const diffuse::error& e) {
                throw spec_error(sf.path() + ": " + e.what());
            }
        };
        if (type == "vp") go(r, make(std::type_identity<vp_sde>{}), sf, dir);
        else if (type == "subvp") go(r, make(std::type_identity<subvp_sde>{}), sf, dir);
        else go(r, make(std::type_identity<ve_sde>{}), sf, dir);
    }

private:
    template <class T, class Sde>
    static void go(run<T>& r, const Sde& sde, fields& sf, const std::filesystem::path& dir) {
        sf.finish();
        auto grid_opt = detail::read_grid(r, "score_sde", {"score_sde", "linspace", "file"}, dir);
        if (!grid_opt) {
            const double eps = r.grid.number_in("eps", 0.0, Sde::T, Sde::default_eps);
            try {
                grid_opt.emplace(score_sde_time_grid(sde, eps));
            } catch (const diffuse::error& e) {
                throw spec_error(r.grid.name("eps") + ": " + e.what());
            }
        }
        const auto& grid = *grid_opt;
        const auto x = r.x_view();
        if (!r.init_from_file) sample_prior(sde, x, r.seed);
        if (r.unet) throw spec_error("spec.denoiser.type: a unet2d denoiser is a discrete-time network; sampler " + r.sampler +
                                     " needs an SDE-time network");
        auto m = analytic_model(*r.data, r.pred, continuous_time<Sde>{sde});
        auto& o = r.opts;
        const auto& s = r.sampler;
        if (s == "euler_maruyama" || s == "reverse_diffusion" || s == "sde_ancestral" || s == "pc") {
            pc_options p;
            p.probability_flow = o.boolean("probability_flow", false);
            p.denoise = o.boolean("denoise", true);
            p.reference_dt = o.boolean("reference_dt", false);
            if (s == "pc") {
                const auto pred = o.choice("predictor", {"euler_maruyama", "reverse_diffusion", "ancestral", "none"}, "reverse_diffusion");
                p.predictor = pred == "euler_maruyama"      ? sde_predictor::euler_maruyama
                              : pred == "reverse_diffusion" ? sde_predictor::reverse_diffusion
                              : pred == "ancestral"         ? sde_predictor::ancestral
                                                            : sde_predictor::none;
                const auto corr = o.choice("corrector", {"langevin", "ald", "none"}, "langevin");
                p.corrector = corr == "langevin" ? sde_corrector::langevin : corr == "ald" ? sde_corrector::ald : sde_corrector::none;
                p.snr = o.number_in("snr", 0.0, detail::inf, 0.16);
                p.n_steps = o.count("n_steps", 1, 1);
                p.norm = o.choice("norm", {"batch_mean", "per_sample"}, "batch_mean") == "per_sample" ? langevin_norm::per_sample
                                                                                                      : langevin_norm::batch_mean;
                sample_pc(m, sde, x, grid, p, r.noise, r.observer);
            } else if (s == "euler_maruyama") {
                sample_euler_maruyama(m, sde, x, grid, p, r.noise, r.observer);
            } else if (s == "reverse_diffusion") {
                sample_reverse_diffusion(m, sde, x, grid, p, r.noise, r.observer);
            } else {
                sample_sde_ancestral(m, sde, x, grid, p, r.noise, r.observer);
            }
        } else if (s == "pf_ode_euler" || s == "pf_ode_heun") {
            const pf_ode_options p{o.boolean("denoise", false)};
            if (s == "pf_ode_euler") sample_pf_ode_euler(m, sde, x, grid, p, r.observer);
            else sample_pf_ode_heun(m, sde, x, grid, p, r.observer);
        } else if (s == "pf_ode_rk45") {
            rk45_options p;
            p.rtol = o.number_in("rtol", 0.0, detail::inf, p.rtol);
            p.atol = o.number_in("atol", 0.0, detail::inf, p.atol);
            p.norm = o.choice("norm", {"per_sample", "batch"}, "per_sample") == "batch" ? rk_error_norm::batch : rk_error_norm::per_sample;
            p.first_step = o.number_in("first_step", 0.0, detail::inf, 0.0);
            p.max_step = o.number_in("max_step", 0.0, detail::inf, detail::inf);
            p.max_attempts = o.count("max_attempts", p.max_attempts, 1);
            p.denoise = o.boolean("denoise", false);
            r.nfe = sample_pf_ode_rk45(m, sde, x, grid, p, r.observer).nfe;
        } else {
            throw spec_error("spec.sampler: \"" + s + "\" has no SDE runner");
        }
    }
};

struct sampler_entry {
    std::string_view name;
    std::string_view family;        // the runner's: discrete, sigma or sde
    std::string_view default_time;  // denoiser.time unless the spec says otherwise
    void (*run_f32)(run<float>&, const std::filesystem::path&);
    void (*run_f64)(run<double>&, const std::filesystem::path&);
};

template <class R>
sampler_entry entry(std::string_view name, std::string_view default_time) {
    if constexpr (requires(run<float>& r) { R{}(r); })
        return {name, R::family, default_time, [](run<float>& r, const std::filesystem::path&) { R{}(r); },
                [](run<double>& r, const std::filesystem::path&) { R{}(r); }};
    else
        return {name, R::family, default_time, [](run<float>& r, const std::filesystem::path& d) { R{}(r, d); },
                [](run<double>& r, const std::filesystem::path& d) { R{}(r, d); }};
}

// The samplers the CLI knows, by spec name, with their family's runner.
inline const std::vector<sampler_entry>& sampler_table() {
    static const std::vector<sampler_entry> table = {
        entry<ddpm_runner>("ddpm", "discrete"),
        entry<ddim_runner>("ddim", "discrete"),
        entry<ddim_inverse_runner>("ddim_inverse", "discrete"),
        entry<sigma_runner>("euler", "discrete"),
        entry<sigma_runner>("euler_ancestral", "discrete"),
        entry<sigma_runner>("heun", "discrete"),
        entry<sigma_runner>("dpm_2", "discrete"),
        entry<sigma_runner>("dpm_2_ancestral", "discrete"),
        entry<sigma_runner>("lms", "discrete"),
        entry<sigma_runner>("dpmpp_2m", "discrete"),
        entry<sigma_runner>("dpmpp_2s_ancestral", "discrete"),
        entry<sigma_runner>("dpmpp_sde", "discrete"),
        entry<sigma_runner>("dpmpp_2m_sde", "discrete"),
        entry<sigma_runner>("dpmpp_3m_sde", "discrete"),
        entry<sigma_runner>("unipc", "discrete"),
        entry<sigma_runner>("annealed_langevin", "sigma"),
        entry<sde_runner>("euler_maruyama", "sde"),
        entry<sde_runner>("reverse_diffusion", "sde"),
        entry<sde_runner>("sde_ancestral", "sde"),
        entry<sde_runner>("pc", "sde"),
        entry<sde_runner>("pf_ode_euler", "sde"),
        entry<sde_runner>("pf_ode_heun", "sde"),
        entry<sde_runner>("pf_ode_rk45", "sde"),
    };
    return table;
}

inline io::json_value load_json(const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    if (!f) throw spec_error(p.string() + ": cannot open the spec");
    std::stringstream ss;
    ss << f.rdbuf();
    try {
        return io::parse_json(ss.str());
    } catch (const std::exception& e) {
        throw spec_error(p.string() + ": not valid JSON: " + e.what());
    }
}

// The result of running a spec: the final sample and (when asked) the trajectory, both with shapes.
template <class T>
struct run_result {
    std::vector<T> x;
    std::vector<std::size_t> shape;
    std::vector<T> trajectory;  // steps × shape, when spec.trajectory is set or always_record
    std::size_t recorded_steps = 0;
    std::optional<std::size_t> nfe;  // model calls, for samplers that report them (pf_ode_rk45)
};

namespace detail {
template <class T>
run_result<T> run_spec_typed(fields& s, const std::filesystem::path& dir, bool always_record,
                             const std::function<void(std::size_t, std::size_t)>& progress) {
    // The denoiser's type first: a model folder supplies the defaults of the sampler, schedule and prediction.
    auto dn = s.object("denoiser");
    const auto dn_type = dn.choice("type", {"gaussian_mixture", "unet2d"}, "gaussian_mixture");
    std::shared_ptr<spec_unet> unet;
    if (dn_type == "unet2d") {
        const auto folder = dir / dn.string("path");
        try {
            unet = std::make_shared<spec_unet>(io::load_unet2d(folder));
            if (std::filesystem::exists(folder / "scheduler_config.json"))
                unet->sched = io::read_scheduler_config(folder / "scheduler_config.json");
        } catch (const diffuse::error& err) {
            throw spec_error(dn.name("path") + ": " + err.what());
        }
    }
    const io::scheduler_config* sched = unet && unet->sched ? &*unet->sched : nullptr;
    std::optional<std::string> default_sampler;
    if (sched) default_sampler = sampler_for_scheduler(sched->class_name);
    if (unet && !s.has("sampler") && !default_sampler)
        throw spec_error(s.name("sampler") + ": missing, and the folder's scheduler_config.json names no scheduler the CLI knows");
    const auto sampler = s.string("sampler", default_sampler);
    const sampler_entry* e = nullptr;
    std::string names;
    for (const auto& en : sampler_table()) {
        if (en.name == sampler) e = &en;
        names += (names.empty() ? "" : ", ") + std::string(en.name);
    }
    if (!e) throw spec_error(s.name("sampler") + ": \"" + sampler + "\" is not one of {" + names + "}");

    // shape: [batch, dims...]
    const auto shape_d = s.numbers("shape");
    if (shape_d.size() < 2) throw spec_error(s.name("shape") + ": expected [batch, dims...] (at least 2 entries)");
    std::vector<std::size_t> shape;
    std::size_t total = 1;
    for (double v : shape_d) {
        if (!(v >= 1 && v == std::floor(v) && v <= 1e8)) throw spec_error(s.name("shape") + ": entries must be positive integers");
        shape.push_back(std::size_t(v));
        total *= std::size_t(v);
        if (total > (std::size_t{1} << 30)) throw spec_error(s.name("shape") + ": too many values");
    }
    const std::size_t batch = shape[0], per = total / batch;
    if (unet) {
        const auto& uc = unet->net.config();
        if (shape.size() != 4 || shape[1] != uc.in_channels)
            throw spec_error(s.name("shape") + ": a unet2d denoiser needs [batch, " + std::to_string(uc.in_channels) +
                             ", height, width]");
        try {
            unet->net.check_input(shape[1], shape[2], shape[3]);
        } catch (const diffuse::error& err) {
            throw spec_error(s.name("shape") + ": " + err.what());
        }
        unet->h = shape[2];
        unet->w = shape[3];
    }

    // schedule (diffusers config names)
    auto sc = s.object("schedule");
    discrete_schedule_config cfg;
    const discrete_schedule_config trained = sched ? sched->schedule : discrete_schedule_config{};
    cfg.beta_schedule = sc.choice("beta_schedule", {"linear", "scaled_linear", "squaredcos_cap_v2", "cosine", "sigmoid", "laplace", "exp"},
                                  trained.beta_schedule);
    cfg.num_train_timesteps = sc.count("num_train_timesteps", trained.num_train_timesteps, 2);
    cfg.beta_start = sc.number_in("beta_start", 1e-12, 1.0, trained.beta_start);
    cfg.beta_end = sc.number_in("beta_end", 1e-12, 1.0, trained.beta_end);
    cfg.rescale_betas_zero_snr = sc.boolean("rescale_betas_zero_snr", trained.rescale_betas_zero_snr);
    if (trained.trained_betas && !sc.has("beta_schedule")) cfg.trained_betas = trained.trained_betas;
    const auto spacing = parse_timestep_spacing(sc.choice("timestep_spacing", {"leading", "trailing", "linspace"},
                                                          std::string(to_string(sched ? sched->spacing : timestep_spacing::leading))));
    const auto offset = static_cast<std::int64_t>(sc.count("steps_offset", std::uint64_t(sched ? sched->steps_offset : 0)));
    const bool alphas_f32 = sc.choice("alphas_dtype", {"float64", "float32"}, "float64") == "float32";
    sc.finish();
    discrete_schedule schedule;
    try {
        schedule = discrete_schedule::from_config(cfg);
    } catch (const diffuse::error& err) {
        throw spec_error(sc.path() + ": " + err.what());
    }
    if (alphas_f32)  // ᾱ as diffusers holds it (a float32 tensor)
        for (auto& a : schedule.alphas_cumprod) a = static_cast<double>(static_cast<float>(a));
    const auto steps = s.count("num_inference_steps", {}, 1);
    std::vector<std::int64_t> ts;
    if (e->family == "discrete") {
        if (steps > cfg.num_train_timesteps)
            throw spec_error(s.name("num_inference_steps") + ": " + std::to_string(steps) + " exceeds schedule.num_train_timesteps");
        try {
            ts = discrete_timesteps(cfg.num_train_timesteps, steps, spacing, offset);
        } catch (const diffuse::error& err) {
            throw spec_error(sc.name("steps_offset") + ": " + err.what());
        }
    }

    // denoiser
    static constexpr const char* prediction_names[] = {"epsilon", "sample", "v_prediction", "score"};
    const auto pred_name = dn.choice("prediction_type", {"epsilon", "sample", "v_prediction", "score"},
                                     prediction_names[std::size_t(sched ? sched->prediction_type : prediction::epsilon)]);
    std::vector<double> weights, means, variances;
    std::optional<double> learned_v;
    if (unet) {
        if (dn.has("class_labels")) {
            for (double v : dn.numbers("class_labels")) {
                if (!(v >= 0 && v == std::floor(v) && v < 1e9))
                    throw spec_error(dn.name("class_labels") + ": expected non-negative integer labels");
                unet->labels.push_back(std::int64_t(v));
            }
            if (unet->labels.size() != batch)
                throw spec_error(dn.name("class_labels") + ": expected one label per sample (" + std::to_string(batch) + ")");
        }
        if (dn.has("null_class")) unet->null_class = std::int64_t(dn.count("null_class"));
        if (dn.has("guidance_scale")) {
            const double g = dn.number("guidance_scale");
            if (!std::isfinite(g)) throw spec_error(dn.name("guidance_scale") + ": expected a finite number");
            unet->guidance_scale = g;
        }
        unet->guidance_rescale = dn.number_in("guidance_rescale", 0.0, 1.0, 0.0);
        const auto& uc = unet->net.config();
        if (uc.class_conditional() && unet->labels.empty())
            throw spec_error(dn.name("class_labels") + ": the model is class-conditional: give one label per sample");
        if (!uc.class_conditional() && !unet->labels.empty())
            throw spec_error(dn.name("class_labels") + ": the model is not class-conditional");
        if (uc.class_embed_type == nn::class_embedding_kind::identity)
            throw spec_error(dn.name("type") + ": class_embed_type \"identity\" models take class vectors, not labels");
        if (unet->guidance_scale && !unet->null_class)
            throw spec_error(dn.name("null_class") + ": guidance_scale needs the label of the unconditional (null) class");
        if (unet->null_class && uc.num_class_embeds && std::uint64_t(*unet->null_class) >= *uc.num_class_embeds)
            throw spec_error(dn.name("null_class") + ": " + std::to_string(*unet->null_class) + " is not below num_class_embeds = " +
                             std::to_string(*uc.num_class_embeds));
        for (auto l : unet->labels)
            if (uc.num_class_embeds && std::uint64_t(l) >= *uc.num_class_embeds)
                throw spec_error(dn.name("class_labels") + ": label " + std::to_string(l) + " is not below num_class_embeds = " +
                                 std::to_string(*uc.num_class_embeds));
    } else {
        weights = dn.numbers("weights", std::vector<double>{1.0});
        means = dn.numbers("means");
        variances = dn.numbers("variances");
        if (dn.has("learned_variance")) learned_v = dn.number_in("learned_variance", -1.0, 1.0);
    }
    const auto time_kind = dn.choice("time", {"discrete", "sigma", "sde"}, std::string(e->default_time));
    const auto interp = dn.choice("interpolation", {"log_sigma", "linear_sigma"}, "log_sigma") == "linear_sigma"
                            ? discrete_time::interpolation::linear_sigma
                            : discrete_time::interpolation::log_sigma;
    std::optional<spec_discrete_time> dtime;
    try {
        dtime.emplace(spec_discrete_time{discrete_time(schedule.alphas_cumprod, interp), {}, {}});
    } catch (const diffuse::error& err) {
        throw spec_error(sc.path() + ": " + err.what());
    }
    if (dn.has("timestep_table")) {
        if (time_kind != "discrete") throw spec_error(dn.name("timestep_table") + ": only for denoiser.time \"discrete\"");
        const auto tab = read_npy_checked(dir / dn.string("timestep_table"), dn.name("timestep_table"), 2);
        const std::size_t M = tab.size() / 2;
        dtime->table_sigma.assign(tab.begin(), tab.begin() + std::ptrdiff_t(M));
        dtime->table_t.assign(tab.begin() + std::ptrdiff_t(M), tab.end());
    }
    dn.finish();
    std::optional<gaussian_mixture> data;
    if (!unet) {
        if (means.size() != weights.size() * per)
            throw spec_error(dn.name("means") + ": expected " + std::to_string(weights.size()) + " x " + std::to_string(per) +
                             " values (components x values per sample)");
        try {
            data.emplace(weights, means, variances);
        } catch (const diffuse::error& err) {
            throw spec_error(dn.path() + ": " + err.what());
        }
    }

    // initial state and noise
    const auto seed = s.count("seed", 0);
    std::vector<T> x(total);
    const bool init_from_file = s.has("init_noise");
    if (init_from_file) {
        const auto v = read_npy_checked(dir / s.string("init_noise"), s.name("init_noise"), total);
        if (v.size() != total) throw spec_error(s.name("init_noise") + ": expected " + std::to_string(total) + " values");
        for (std::size_t i = 0; i < total; ++i) x[i] = static_cast<T>(v[i]);
    } else {
        (void)s.raw("init_noise");
        fill_normal(batched(x, batch), seed, normal_draw_limit - 1, 0);  // the last draw number: never a step's
    }
    spec_noise noise{std::nullopt, counter_noise{seed, 0}};
    if (s.has("step_noise")) noise.recorded.emplace(read_npy_checked(dir / s.string("step_noise"), s.name("step_noise"), total), total);
    else (void)s.raw("step_noise");

    run_result<T> res;
    const bool record = always_record || s.has("trajectory");
    if (s.has("trajectory")) (void)s.string("trajectory");
    (void)s.raw("dtype");
    (void)s.raw("test");  // the parity test's expectations; the CLI ignores them
    // grid and SDE belong to some families only
    if (e->family == "discrete" && s.has("grid"))
        throw spec_error(s.name("grid") + ": the discrete samplers walk the schedule's timesteps (no grid)");
    if (e->family != "sde" && s.has("sde")) throw spec_error(s.name("sde") + ": only the score_sde samplers read an SDE");
    auto opts = s.object("options");
    auto grid = s.object("grid");
    auto sde = s.object("sde");
    run<T> r{sampler, opts, s, grid, sde, std::move(schedule), std::move(ts), std::size_t(steps), offset, spacing,
             std::move(data), unet, parse_prediction(pred_name), x, batch, noise, nullptr, learned_v, time_kind, std::move(*dtime),
             init_from_file, seed, std::nullopt};
    r.observer = [&res, record, &progress](const step_info<T>& info) {
        if (record) {
            res.trajectory.insert(res.trajectory.end(), info.x.data, info.x.data + info.x.size());
            ++res.recorded_steps;
        }
        if (progress) progress(info.step + 1, info.steps);
    };
    s.finish();
    try {
        if constexpr (std::is_same_v<T, float>) e->run_f32(r, dir);
        else e->run_f64(r, dir);
    } catch (const spec_error&) {
        throw;
    } catch (const diffuse::error& err) {
        throw spec_error(std::string("spec.options: ") + err.what());
    }
    grid.finish();
    sde.finish();
    opts.finish();
    res.x = std::move(x);
    res.shape = shape;
    res.nfe = r.nfe;
    if (unet && !res.nfe) res.nfe = unet->profile.forwards;  // network calls (a guided call holds both halves)
    return res;
}
}  // namespace detail

// Runs a spec in double (dtype "float64", the default) or float ("float32"); results are returned in double.
struct spec_run {
    std::vector<double> x, trajectory;
    std::vector<std::size_t> shape;
    std::size_t recorded_steps = 0;
    std::string dtype;
    std::optional<std::size_t> nfe;
};

// A progress bar on stderr for run_spec's progress callback: "[####....] done/total", redrawn in place.
inline void progress_bar(std::size_t done, std::size_t total) {
    constexpr std::size_t width = 40;
    const std::size_t filled = total ? done * width / total : width;
    std::fprintf(stderr, "\r[%s%s] %zu/%zu", std::string(filled, '#').c_str(), std::string(width - filled, '.').c_str(), done,
                 total);
    if (done >= total) std::fputc('\n', stderr);
    std::fflush(stderr);
}

// progress(done, total) is called after every step (e.g. progress_bar).
inline spec_run run_spec(const io::json_value& root, const std::filesystem::path& dir, bool always_record = false,
                         const std::function<void(std::size_t, std::size_t)>& progress = {}) {
    fields s(&root, "spec");
    const auto dtype = s.choice("dtype", {"float32", "float64"}, "float64");
    spec_run out;
    out.dtype = dtype;
    auto take = [&](auto res) {
        out.x.assign(res.x.begin(), res.x.end());
        out.trajectory.assign(res.trajectory.begin(), res.trajectory.end());
        out.shape = res.shape;
        out.recorded_steps = res.recorded_steps;
        out.nfe = res.nfe;
    };
    if (dtype == "float32") take(detail::run_spec_typed<float>(s, dir, always_record, progress));
    else take(detail::run_spec_typed<double>(s, dir, always_record, progress));
    return out;
}

}  // namespace diffuse::cli
