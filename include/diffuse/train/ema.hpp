#pragma once
// Exponential moving average of parameters with warm-up, as diffusers' EMAModel computes it:
//   step' = max(0, optimization_step − update_after_step − 1); decay = 0 when step' = 0, else
//   warm-up (Karras-style power schedule):  1 − (1 + step'/inv_gamma)^(−power)
//   otherwise:                              (1 + step')/(10 + step')
//   then clamped to [min_decay, decay];     shadow ← shadow − (1 − decay)(shadow − θ)
// (EMA of weights for diffusion: Ho et al. 2020, §4; the power warm-up of Karras et al. 2024 /
// the "ema_warmup" of diffusers.)

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "diffuse/core/error.hpp"

namespace diffuse {

struct ema_options {
    double decay = 0.9999;           // the maximum decay
    double min_decay = 0.0;
    std::uint64_t update_after_step = 0;
    bool use_warmup = false;
    double inv_gamma = 1.0;
    double power = 2.0 / 3.0;

    void validate(const char* where) const {
        detail::require(decay >= 0.0 && decay <= 1.0, where, "decay", decay, "[0, 1]");
        detail::require(min_decay >= 0.0 && min_decay <= decay, where, "min_decay", min_decay, "[0, decay]");
        detail::require(inv_gamma > 0.0 && std::isfinite(inv_gamma), where, "inv_gamma", inv_gamma, "(0, inf)");
        detail::require(power > 0.0 && std::isfinite(power), where, "power", power, "(0, inf)");
    }
};

// The decay used at the given (1-based) optimization step.
[[nodiscard]] inline double ema_decay(const ema_options& o, std::uint64_t optimization_step) {
    o.validate("ema_decay");
    const std::uint64_t skip = o.update_after_step + 1;
    if (optimization_step <= skip) return 0.0;
    const double step = double(optimization_step - skip);
    double cur = o.use_warmup ? 1.0 - std::pow(1.0 + step / o.inv_gamma, -o.power) : (1.0 + step) / (10.0 + step);
    cur = std::min(cur, o.decay);
    return std::max(cur, o.min_decay);
}

class ema {
public:
    ema(std::span<const float> params, const ema_options& opt = {}) : opt_(opt), shadow_(params.begin(), params.end()) {
        opt_.validate("ema");
    }

    // One optimisation step: advances the counter and moves the shadow towards params.
    void update(std::span<const float> params) {
        if (params.size() != shadow_.size())
            detail::fail("ema::update", "params has " + std::to_string(params.size()) + " values but the EMA holds " +
                                            std::to_string(shadow_.size()));
        ++step_;
        last_decay_ = ema_decay(opt_, step_);
        const float k = float(1.0 - last_decay_);
        for (std::size_t i = 0; i < shadow_.size(); ++i) shadow_[i] -= k * (shadow_[i] - params[i]);
    }

    [[nodiscard]] std::span<const float> shadow() const noexcept { return shadow_; }
    [[nodiscard]] std::uint64_t steps() const noexcept { return step_; }
    [[nodiscard]] double last_decay() const noexcept { return last_decay_; }

    void copy_to(std::span<float> params) const {
        if (params.size() != shadow_.size())
            detail::fail("ema::copy_to", "params has " + std::to_string(params.size()) + " values but the EMA holds " +
                                             std::to_string(shadow_.size()));
        std::copy(shadow_.begin(), shadow_.end(), params.begin());
    }

private:
    ema_options opt_;
    std::vector<float> shadow_;
    std::uint64_t step_ = 0;
    double last_decay_ = 0.0;
};

}  // namespace diffuse
