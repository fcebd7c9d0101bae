#pragma once
// The sampling-spec runner behind `diffuse sample SPEC.json OUT.npy` and the golden parity test.
// The spec format is documented in docs/cli.md. Every defect in a spec raises spec_error whose message is one
// line naming the field ("spec.schedule.beta_start: expected a number").
//
// Adding a sampler: write a runner struct with `template <class T> void operator()(run<T>&) const` that reads
// its options through r.opts and calls the sampler with r.x, r.noise and r.observer, then add one line to
// sampler_table() below.

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
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
#include "diffuse/samplers/ddim.hpp"
#include "diffuse/samplers/ddpm.hpp"
#include "diffuse/samplers/noise_source.hpp"
#include "diffuse/schedules/beta.hpp"
#include "diffuse/schedules/timesteps.hpp"

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

// A noise source that is either the counter generator or a recording (.npy of [draws, batch, ...]).
struct spec_noise {
    std::optional<recorded_noise> recorded;
    counter_noise counter;
    template <class V>
    void operator()(const V& out, std::uint64_t draw) const {
        if (recorded) (*recorded)(out, draw);
        else counter(out, draw);
    }
};

// Everything a sampler runner needs.
template <class T>
struct run {
    fields& opts;                           // spec.options
    fields& spec;                           // the whole spec (for rarely used top-level fields)
    discrete_schedule schedule;
    std::vector<std::int64_t> timesteps;    // descending, from the spec's spacing
    std::size_t num_inference_steps;
    std::int64_t steps_offset;
    gaussian_mixture data;
    prediction pred;
    std::vector<T>& x;
    std::size_t batch;
    spec_noise& noise;
    std::function<void(const step_info<T>&)> observer;
    std::optional<double> learned_variance;

    [[nodiscard]] auto x_view() { return batched(x, batch); }
    [[nodiscard]] auto discrete_model() {
        auto m = analytic_model(data, pred, discrete_time(schedule.alphas_cumprod));
        if (learned_variance) m.net().learned_variance = *learned_variance;
        return m;
    }
};

namespace detail {
inline void read_clipping(fields& o, sample_clipping& c, bool default_clip) {
    c.clip_sample = o.boolean("clip_sample", default_clip);
    c.clip_sample_range = o.number_in("clip_sample_range", 1e-12, 1e300, 1.0);
    c.thresholding = o.boolean("thresholding", false);
    c.dynamic_thresholding_ratio = o.number_in("dynamic_thresholding_ratio", 1e-12, 1.0, 0.995);
    c.sample_max_value = o.number_in("sample_max_value", 1.0, 1e300, 1.0);
}
}  // namespace detail

struct ddpm_runner {
    template <class T>
    void operator()(run<T>& r) const {
        ddpm_options o;
        detail::read_clipping(r.opts, o, true);
        o.variance_type = parse_ddpm_variance(r.opts.choice(
            "variance_type", {"fixed_small", "fixed_small_log", "fixed_large", "learned", "learned_range"}, "fixed_small"));
        auto m = r.discrete_model();
        sample_ddpm(m, r.x_view(), r.schedule.alphas_cumprod, discrete_grid(r.timesteps), o, r.noise, r.observer);
    }
};

struct ddim_runner {
    template <class T>
    void operator()(run<T>& r) const {
        ddim_options o;
        detail::read_clipping(r.opts, o, true);
        o.eta = r.opts.number_in("eta", 0.0, 1e300, 0.0);
        o.use_clipped_model_output = r.opts.boolean("use_clipped_model_output", false);
        o.set_alpha_to_one = r.opts.boolean("set_alpha_to_one", true);
        o.prev_timestep = r.opts.choice("prev_timestep", {"next_in_list", "fixed_stride"}, "next_in_list") == "fixed_stride"
                              ? prev_timestep_rule::fixed_stride
                              : prev_timestep_rule::next_in_list;
        o.num_inference_steps = r.num_inference_steps;
        auto m = r.discrete_model();
        sample_ddim(m, r.x_view(), r.schedule.alphas_cumprod, discrete_grid(r.timesteps), o, r.noise, r.observer);
    }
};

struct ddim_inverse_runner {
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
        auto m = r.discrete_model();
        sample_ddim_inverse(m, r.x_view(), r.schedule.alphas_cumprod, time_grid(g), o, r.observer);
    }
};

struct sampler_entry {
    std::string_view name;
    void (*run_f32)(run<float>&);
    void (*run_f64)(run<double>&);
};

template <class R>
sampler_entry entry(std::string_view name) {
    return {name, [](run<float>& r) { R{}(r); }, [](run<double>& r) { R{}(r); }};
}

// The samplers the CLI knows, by spec name.
inline const std::vector<sampler_entry>& sampler_table() {
    static const std::vector<sampler_entry> table = {
        entry<ddpm_runner>("ddpm"),
        entry<ddim_runner>("ddim"),
        entry<ddim_inverse_runner>("ddim_inverse"),
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

template <class T>
run_result<T> run_spec_typed(fields& s, const std::filesystem::path& dir, bool always_record) {
    const auto sampler = s.string("sampler");
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

    // schedule (diffusers config names)
    auto sc = s.object("schedule");
    discrete_schedule_config cfg;
    cfg.beta_schedule = sc.choice("beta_schedule", {"linear", "scaled_linear", "squaredcos_cap_v2", "cosine", "sigmoid", "laplace", "exp"},
                                  "linear");
    cfg.num_train_timesteps = sc.count("num_train_timesteps", 1000, 2);
    cfg.beta_start = sc.number_in("beta_start", 1e-12, 1.0, 1e-4);
    cfg.beta_end = sc.number_in("beta_end", 1e-12, 1.0, 0.02);
    cfg.rescale_betas_zero_snr = sc.boolean("rescale_betas_zero_snr", false);
    const auto spacing = parse_timestep_spacing(sc.choice("timestep_spacing", {"leading", "trailing", "linspace"}, "leading"));
    const auto offset = static_cast<std::int64_t>(sc.count("steps_offset", 0));
    sc.finish();
    discrete_schedule schedule;
    try {
        schedule = discrete_schedule::from_config(cfg);
    } catch (const diffuse::error& err) {
        throw spec_error(sc.path() + ": " + err.what());
    }
    const auto steps = s.count("num_inference_steps", {}, 1);
    if (steps > cfg.num_train_timesteps)
        throw spec_error(s.name("num_inference_steps") + ": " + std::to_string(steps) + " exceeds schedule.num_train_timesteps");
    std::vector<std::int64_t> ts;
    try {
        ts = discrete_timesteps(cfg.num_train_timesteps, steps, spacing, offset);
    } catch (const diffuse::error& err) {
        throw spec_error(sc.name("steps_offset") + ": " + err.what());
    }

    // denoiser
    auto dn = s.object("denoiser");
    dn.choice("type", {"gaussian_mixture"}, "gaussian_mixture");
    const auto pred_name = dn.choice("prediction_type", {"epsilon", "sample", "v_prediction", "score"}, "epsilon");
    const auto weights = dn.numbers("weights", std::vector<double>{1.0});
    const auto means = dn.numbers("means");
    const auto variances = dn.numbers("variances");
    std::optional<double> learned_v;
    if (dn.has("learned_variance")) learned_v = dn.number_in("learned_variance", -1.0, 1.0);
    dn.finish();
    if (means.size() != weights.size() * per)
        throw spec_error(dn.name("means") + ": expected " + std::to_string(weights.size()) + " x " + std::to_string(per) +
                         " values (components x values per sample)");
    std::optional<gaussian_mixture> data;
    try {
        data.emplace(weights, means, variances);
    } catch (const diffuse::error& err) {
        throw spec_error(dn.path() + ": " + err.what());
    }

    // initial state and noise
    const auto seed = s.count("seed", 0);
    std::vector<T> x(total);
    if (s.has("init_noise")) {
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
    auto opts = s.object("options");
    run<T> r{opts, s, std::move(schedule), std::move(ts), std::size_t(steps), offset, std::move(*data),
             parse_prediction(pred_name), x, batch, noise, nullptr, learned_v};
    if (record)
        r.observer = [&res](const step_info<T>& info) {
            res.trajectory.insert(res.trajectory.end(), info.x.data, info.x.data + info.x.size());
            ++res.recorded_steps;
        };
    else
        r.observer = [](const step_info<T>&) {};
    s.finish();
    try {
        if constexpr (std::is_same_v<T, float>) e->run_f32(r);
        else e->run_f64(r);
    } catch (const spec_error&) {
        throw;
    } catch (const diffuse::error& err) {
        throw spec_error(std::string("spec.options: ") + err.what());
    }
    opts.finish();
    res.x = std::move(x);
    res.shape = shape;
    return res;
}
}  // namespace detail

// Runs a spec in double (dtype "float64", the default) or float ("float32"); results are returned in double.
struct spec_run {
    std::vector<double> x, trajectory;
    std::vector<std::size_t> shape;
    std::size_t recorded_steps = 0;
    std::string dtype;
};

inline spec_run run_spec(const io::json_value& root, const std::filesystem::path& dir, bool always_record = false) {
    fields s(&root, "spec");
    const auto dtype = s.choice("dtype", {"float32", "float64"}, "float64");
    spec_run out;
    out.dtype = dtype;
    auto take = [&](auto res) {
        out.x.assign(res.x.begin(), res.x.end());
        out.trajectory.assign(res.trajectory.begin(), res.trajectory.end());
        out.shape = res.shape;
        out.recorded_steps = res.recorded_steps;
    };
    if (dtype == "float32") take(detail::run_spec_typed<float>(s, dir, always_record));
    else take(detail::run_spec_typed<double>(s, dir, always_record));
    return out;
}

}  // namespace diffuse::cli
