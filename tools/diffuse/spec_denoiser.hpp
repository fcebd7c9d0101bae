#pragma once
// A spec's denoiser (spec.denoiser, docs/cli.md): the analytic Gaussian mixture or a diffusers U-Net folder,
// its prediction type and the time its network reads (discrete timesteps, σ, the SDE's time or flow-matching
// s·T), and the
// diffuse::model each sampler family drives it through.

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "diffuse/guidance/cfg.hpp"
#include "diffuse/io/diffusers.hpp"
#include "diffuse/samplers/analytic.hpp"
#include "diffuse/samplers/model.hpp"
#include "spec_fields.hpp"
#include "spec_files.hpp"
#include "unet_denoiser.hpp"

namespace diffuse::cli {

// The network time of a discrete-schedule network driven by σ: the schedule's interpolation, or (with a
// timestep table) the timestep the reference fed the network at that σ, for schedulers whose σ → t rule
// varies between steps (diffusers' KDPM2: linear-σ grid points, log-σ midpoints). A discrete_time, so the
// exact timesteps a sampler names (evaluation::t_net: dpm_2_ancestral's network_timesteps) reach it.
struct spec_discrete_time : discrete_time {
    std::vector<double> table_sigma, table_t;
    explicit spec_discrete_time(discrete_time base) : discrete_time(std::move(base)) {}
    [[nodiscard]] const discrete_time& base() const noexcept { return *this; }
    [[nodiscard]] network_time operator()(double alpha, double sigma) const {
        if (table_sigma.empty() || alpha == 0.0) return base()(alpha, sigma);
        const double s = sigma / alpha;
        std::size_t best = 0;
        for (std::size_t i = 1; i < table_sigma.size(); ++i)
            if (std::abs(table_sigma[i] - s) < std::abs(table_sigma[best] - s)) best = i;
        if (!(std::abs(table_sigma[best] - s) <= 1e-5 * s))
            diffuse::detail::fail("spec.denoiser.timestep_table", "no timestep recorded for sigma " + std::to_string(s));
        return {table_t[best], 1.0 / std::sqrt(1.0 + s * s)};
    }
};

struct spec_denoiser {
    std::shared_ptr<spec_unet> unet;        // the U-Net of a model folder, or
    std::optional<gaussian_mixture> data;   // the analytic denoiser
    prediction pred = prediction::epsilon;
    std::optional<double> learned_variance;
    std::string time_kind;                  // denoiser.time: discrete, sigma, sde, flow or edm
    std::optional<spec_discrete_time> dtime;
    double flow_timesteps = 1000;           // time "flow": the network reads s·T, T = schedule.num_train_timesteps
    double sigma_data = 0.5;                // time "edm": the preconditioning's σ_data (denoiser.sigma_data)

    // The model folder's scheduler_config.json, when there is one (defaults of the sampler options).
    [[nodiscard]] const io::scheduler_config* scheduler() const { return unet && unet->sched ? &*unet->sched : nullptr; }

    // Calls f(model) with the denoiser on the schedule's discrete timesteps (DDPM, DDIM).
    template <class F>
    void with_discrete_model(F&& f) {
        if (unet) {
            model<nn::unet2d_network, discrete_time> m(unet->network(), pred, dtime->base());
            guided(m, f);
            return;
        }
        auto m = analytic_model(*data, pred, dtime->base());
        if (learned_variance) m.net().learned_variance = *learned_variance;
        f(m);
    }
    // Calls f(model) with the denoiser read through its declared time (σ-space samplers: discrete or sigma).
    template <class F>
    void with_sigma_model(const std::string& sampler, F&& f) {
        if (time_kind == "edm") {
            with_edm_model(std::forward<F>(f));
        } else if (unet) {
            if (time_kind != "discrete")
                throw spec_error("spec.denoiser.time: a unet2d denoiser is a discrete-time network (time \"discrete\") or an "
                                 "EDM-preconditioned one (time \"edm\")");
            model<nn::unet2d_network, spec_discrete_time> m(unet->network(), pred, *dtime);
            guided(m, f);
        } else if (time_kind == "sigma") {
            auto m = analytic_model(*data, pred, sigma_time{});
            f(m);
        } else if (time_kind == "flow") {  // a flow-matching network under a σ-space sampler (α = 1, σ = s/(1 − s))
            auto m = analytic_model(*data, pred, flow_time{flow_timesteps});
            f(m);
        } else if (time_kind == "discrete") {
            analytic_denoiser<discrete_clock> net(*data, pred, discrete_clock{dtime->base()});
            if (learned_variance) net.learned_variance = *learned_variance;
            model<analytic_denoiser<discrete_clock>, spec_discrete_time> m(std::move(net), pred, *dtime);
            f(m);
        } else {
            throw spec_error("spec.denoiser.time: \"" + time_kind + "\" cannot drive sampler " + sampler +
                             " (use discrete, sigma, flow or edm)");
        }
    }
    // Calls f(model) with the denoiser read as a flow-matching network (flow samplers: time flow), or through
    // its declared discrete or σ time.
    template <class F>
    void with_flow_model(const std::string& sampler, F&& f) {
        if (unet || time_kind != "flow") {
            with_sigma_model(sampler, std::forward<F>(f));
            return;
        }
        auto m = analytic_model(*data, pred, flow_time{flow_timesteps});
        f(m);
    }
    // Calls f(model) with the denoiser on the SDE's own time (score_sde samplers).
    template <class Sde, class F>
    void with_sde_model(const std::string& sampler, const Sde& sde, F&& f) {
        if (unet)
            throw spec_error("spec.denoiser.type: a unet2d denoiser is a discrete-time network; sampler " + sampler +
                             " needs an SDE-time network");
        auto m = analytic_model(*data, pred, continuous_time<Sde>{sde});
        f(m);
    }

    // Calls f(model) with the denoiser on a network time chosen by the caller (spec.scheduler_config: the
    // configured scheduler's discrete_time, flow_time or edm_time; an edm_time's model predicts x₀).
    template <class Time, class F>
    void with_time(const Time& time, F&& f) {
        if constexpr (std::is_same_v<Time, edm_time>) {
            if (unet) {
                model<nn::unet2d_network, edm_time> m(unet->network(), prediction::sample, time);
                guided(m, f);
            } else {
                auto m = analytic_model(*data, prediction::sample, time);
                f(m);
            }
            return;
        }
        if (unet) {
            if constexpr (std::is_same_v<Time, discrete_time>) {
                model<nn::unet2d_network, discrete_time> m(unet->network(), pred, time);
                guided(m, f);
            } else {
                throw spec_error("spec.denoiser.type: a unet2d denoiser is a discrete-time network, not a flow-matching one");
            }
            return;
        }
        auto m = analytic_model(*data, pred, time);
        if constexpr (std::is_same_v<Time, discrete_time>)
            if (learned_variance) m.net().learned_variance = *learned_variance;
        f(m);
    }

private:
    // f(model) with the denoiser as an EDM-preconditioned network (time "edm", samplers/model.hpp edm_time):
    // x₀ = c_skip·x + c_out·F(c_in·x, log(σ)/4) with denoiser.sigma_data and prediction_type epsilon or v_prediction.
    template <class F>
    void with_edm_model(F&& f) {
        if (pred != prediction::epsilon && pred != prediction::v)
            throw spec_error("spec.denoiser.prediction_type: an EDM-preconditioned network (time \"edm\") predicts epsilon or "
                             "v_prediction");
        const edm_time time{sigma_data, pred == prediction::v ? edm_output::v_prediction : edm_output::epsilon};
        if (unet) {
            model<nn::unet2d_network, edm_time> m(unet->network(), prediction::sample, time);
            guided(m, f);
            return;
        }
        auto m = analytic_model(*data, prediction::sample, time);
        f(m);
    }
    // f(m), or f(cfg_model(m)) when the spec asks for classifier-free guidance.
    template <class M, class F>
    void guided(M& m, F&& f) {
        if (unet->guidance_scale) {
            cfg_model<M> g(m, *unet->guidance_scale, unet->guidance_rescale);
            f(g);
        } else {
            f(m);
        }
    }
};

namespace detail {
// denoiser.type, and for "unet2d" the model folder denoiser.path (with its scheduler_config.json, which
// supplies the defaults of the rest of the spec): read first.
inline std::shared_ptr<spec_unet> open_unet(fields& dn, const std::filesystem::path& dir) {
    if (dn.choice("type", {"gaussian_mixture", "unet2d"}, "gaussian_mixture") != "unet2d") return nullptr;
    const auto folder = dir / dn.string("path");
    try {
        auto unet = std::make_shared<spec_unet>(io::load_unet2d(folder));
        if (std::filesystem::exists(folder / "scheduler_config.json"))
            unet->sched = io::read_scheduler_config(folder / "scheduler_config.json");
        return unet;
    } catch (const diffuse::error& err) {
        throw spec_error(dn.name("path") + ": " + err.what());
    }
}

// A U-Net's class labels and classifier-free guidance (denoiser.class_labels, null_class, guidance_scale,
// guidance_rescale), checked against the model's class embedding.
inline void read_unet_conditioning(fields& dn, spec_unet& unet, std::size_t batch) {
    if (dn.has("class_labels")) {
        for (auto v : dn.indices("class_labels", "non-negative integer labels")) unet.labels.push_back(std::int64_t(v));
        if (unet.labels.size() != batch)
            throw spec_error(dn.name("class_labels") + ": expected one label per sample (" + std::to_string(batch) + ")");
    }
    if (dn.has("null_class")) unet.null_class = std::int64_t(dn.count("null_class"));
    if (dn.has("guidance_scale")) {
        const double g = dn.number("guidance_scale");
        if (!std::isfinite(g)) throw spec_error(dn.name("guidance_scale") + ": expected a finite number");
        unet.guidance_scale = g;
    }
    unet.guidance_rescale = dn.number_in("guidance_rescale", 0.0, 1.0, 0.0);
    const auto& uc = unet.net.config();
    if (uc.class_conditional() && unet.labels.empty())
        throw spec_error(dn.name("class_labels") + ": the model is class-conditional: give one label per sample");
    if (!uc.class_conditional() && !unet.labels.empty()) throw spec_error(dn.name("class_labels") + ": the model is not class-conditional");
    if (uc.class_embed_type == nn::class_embedding_kind::identity)
        throw spec_error(dn.name("type") + ": class_embed_type \"identity\" models take class vectors, not labels");
    if (unet.guidance_scale && !unet.null_class)
        throw spec_error(dn.name("null_class") + ": guidance_scale needs the label of the unconditional (null) class");
    auto below_class_count = [&](std::string_view field, std::string what, std::int64_t label) {
        if (uc.num_class_embeds && std::uint64_t(label) >= *uc.num_class_embeds)
            throw spec_error(dn.name(field) + ": " + what + std::to_string(label) + " is not below num_class_embeds = " +
                             std::to_string(*uc.num_class_embeds));
    };
    if (unet.null_class) below_class_count("null_class", "", *unet.null_class);
    for (auto l : unet.labels) below_class_count("class_labels", "label ", l);
}

// The rest of spec.denoiser, after open_unet: prediction type, the U-Net's conditioning or the mixture's
// components, the network time (default_time unless denoiser.time says otherwise) and its σ → t table.
inline spec_denoiser read_denoiser(fields& dn, std::shared_ptr<spec_unet> unet, std::size_t batch, std::size_t per_sample,
                                   const std::vector<double>& alphas_cumprod, std::string_view default_time,
                                   const spec_files& files) {
    spec_denoiser out;
    out.unet = std::move(unet);
    const auto* sched = out.scheduler();
    static constexpr const char* prediction_names[] = {"epsilon", "sample", "v_prediction", "score", "flow_prediction"};
    out.pred = parse_prediction(dn.choice("prediction_type", {"epsilon", "sample", "v_prediction", "score", "flow_prediction"},
                                          prediction_names[std::size_t(sched ? sched->prediction_type : prediction::epsilon)]));
    std::vector<double> weights, means, variances;
    if (out.unet) {
        read_unet_conditioning(dn, *out.unet, batch);
    } else {
        weights = dn.numbers("weights", std::vector<double>{1.0});
        means = dn.numbers("means");
        variances = dn.numbers("variances");
        if (dn.has("learned_variance")) out.learned_variance = dn.number_in("learned_variance", -1.0, 1.0);
    }
    out.time_kind = dn.choice("time", {"discrete", "sigma", "sde", "flow", "edm"}, std::string(default_time));
    out.flow_timesteps = double(alphas_cumprod.size());
    if (dn.has("sigma_data")) {
        if (out.time_kind != "edm") throw spec_error(dn.name("sigma_data") + ": only for denoiser.time \"edm\"");
        out.sigma_data = dn.number_in("sigma_data", 1e-12, 1e12);
    }
    const auto interp = dn.choice("interpolation", {"log_sigma", "linear_sigma"}, "log_sigma") == "linear_sigma"
                            ? discrete_time::interpolation::linear_sigma
                            : discrete_time::interpolation::log_sigma;
    try {
        if (!alphas_cumprod.empty())  // empty: a flow-matching scheduler_config (no discrete schedule)
            out.dtime.emplace(discrete_time(alphas_cumprod, interp));
    } catch (const diffuse::error& err) {
        throw spec_error("spec.schedule: " + std::string(err.what()));
    }
    if (dn.has("timestep_table")) {
        if (out.time_kind != "discrete") throw spec_error(dn.name("timestep_table") + ": only for denoiser.time \"discrete\"");
        const auto tab = files.read_npy(dn.string("timestep_table"), dn.name("timestep_table"), 2).values;
        const std::size_t M = tab.size() / 2;
        out.dtime->table_sigma.assign(tab.begin(), tab.begin() + std::ptrdiff_t(M));
        out.dtime->table_t.assign(tab.begin() + std::ptrdiff_t(M), tab.end());
    }
    dn.finish();
    if (!out.unet) {
        if (means.size() != weights.size() * per_sample)
            throw spec_error(dn.name("means") + ": expected " + std::to_string(weights.size()) + " x " + std::to_string(per_sample) +
                             " values (components x values per sample)");
        try {
            out.data.emplace(weights, means, variances);
        } catch (const diffuse::error& err) {
            throw spec_error(dn.path() + ": " + err.what());
        }
    }
    return out;
}
}  // namespace detail

}  // namespace diffuse::cli
