#pragma once
// Classifier-free guidance (Ho & Salimans 2022, "Classifier-Free Diffusion Guidance", eq. 6) with guidance
// rescale (Lin et al. 2024, "Common Diffusion Noise Schedules and Sample Steps are Flawed", §3.4, Alg. 2).
//
// cfg_model wraps a model and is itself a model: every predict() stacks the batch twice, conditional rows
// then unconditional rows (model_cond::unconditional = 1 on the second half), so the network runs ONCE on
// 2B samples. In the network's own prediction space (as diffusers guides the raw noise_pred):
//   ĝ = û + w·(ĉ − û)
//   guidance_rescale φ > 0:  ĝ ← φ·ĝ·std(ĉ)/std(ĝ) + (1 − φ)·ĝ     (std per sample, unbiased, as torch.std)
// then ĝ is converted to what the sampler asked for. Workspaces grow to the largest batch seen and are reused;
// they live in the memory space of the tensors it is called with. Guidance rescale's stds are diffuse::variance
// (two passes over fixed blocks, the same bits on host and device tensors) into per-sample values in that
// space, the factor k_b = φ·std(ĉ)/std(ĝ) + (1 − φ) is computed there (detail::rescale_factor_body) and
// lincomb reads it there: on device tensors nothing is read back, so a CUDA graph captures guidance rescale.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "diffuse/core/elementwise.hpp"
#include "diffuse/core/reduce.hpp"
#include "diffuse/core/scratch.hpp"
#include "diffuse/core/tensor_copy.hpp"
#include "diffuse/process/parameterization.hpp"
#include "diffuse/samplers/stepper.hpp"

namespace diffuse {

namespace detail {
// Guidance rescale's factor of sample b (Lin et al. 2024, Alg. 2): k_b = φ·std(ĉ)/std(ĝ) + (1 − φ), from the
// variances where they live (for_each_sample), in double: φ·(√var_ĉ / √var_ĝ) + (1 − φ).
struct rescale_factor_body {
    const double* var_c;
    const double* var_g;
    double phi;
    double* k;
    DIFFUSE_HD void operator()(std::size_t b) const {
        const double ratio = std::sqrt(var_c[b]) / std::sqrt(var_g[b]);
        k[b] = phi * ratio + (1.0 - phi);
    }
};
}  // namespace detail

template <class Inner>
class cfg_model {
public:
    cfg_model(Inner& inner, double guidance_scale, double guidance_rescale = 0.0)
        : inner_(inner), scale_(guidance_scale), rescale_(guidance_rescale) {
        detail::require(std::isfinite(guidance_scale), "cfg_model", "guidance_scale", guidance_scale, "finite");
        detail::require(guidance_rescale >= 0 && guidance_rescale <= 1, "cfg_model", "guidance_rescale", guidance_rescale,
                        "[0, 1]");
    }

    [[nodiscard]] prediction predicts() const { return inner_.predicts(); }
    [[nodiscard]] const auto& time() const { return inner_.time(); }
    [[nodiscard]] Inner& inner() noexcept { return inner_; }

    // The guided `want` prediction at x (the arguments of model::predict): out must have x's shape and
    // memory of its own; alpha and sigma hold one value per sample, t_net one or none.
    template <tensor X, tensor Out>
    void predict(X&& x_in, std::span<const double> alpha, std::span<const double> sigma, prediction want, Out&& out_in,
                 std::span<const double> t_net = {}, std::uint64_t first_sample = 0) {
        if constexpr (!std::is_same_v<tensor_value_t<X>, tensor_value_t<Out>>) {
            static_assert(std::is_same_v<tensor_value_t<X>, tensor_value_t<Out>>,
                          "diffuse::cfg_model: x and out must have the same element type (float or double)");
        } else if constexpr (tensor_space_v<X> != tensor_space_v<Out>) {
            static_assert(tensor_space_v<X> == tensor_space_v<Out>, "diffuse::cfg_model: x and out must live in the same memory space");
        } else {
            guide<tensor_value_t<X>, tensor_space_v<X>>(view(std::forward<X>(x_in)), alpha, sigma, want,
                                     detail::writable_view(std::forward<Out>(out_in), "cfg_model::predict"), t_net,
                                     first_sample);
        }
    }

private:
    template <class T, memory_space S>
    void guide(tensor_view<const T, S> x, std::span<const double> alpha, std::span<const double> sigma, prediction want,
               tensor_view<T, S> out, std::span<const double> t_net, std::uint64_t first_sample) {
        constexpr const char* where = "cfg_model::predict";
        const std::size_t B = x.batch, D = x.per_sample;
        detail::require_shape(out, x, where, "out");
        detail::require_disjoint(out, x, where, "out", "x");  // the conversion below reads x after out is written
        detail::require_per_sample(alpha, B, where, "alpha");
        detail::require_per_sample(sigma, B, where, "sigma");
        detail::require_per_sample(t_net, B, where, "t_net", true);
        const auto x2 = scratch_.template get<T, S>(0, 2 * B, D), o2 = scratch_.template get<T, S>(1, 2 * B, D);
        a2_.resize(2 * B);
        s2_.resize(2 * B);
        t2_.resize(t_net.empty() ? 0 : 2 * B);
        mask_.assign(2 * B, 0);
        for (std::size_t h = 0; h < 2; ++h) {
            detail::copy_values(tensor_view<T, S>{x2.data + h * B * D, B, D}, x);
            std::copy(alpha.begin(), alpha.end(), a2_.begin() + std::ptrdiff_t(h * B));
            std::copy(sigma.begin(), sigma.end(), s2_.begin() + std::ptrdiff_t(h * B));
            if (!t_net.empty()) std::copy(t_net.begin(), t_net.end(), t2_.begin() + std::ptrdiff_t(h * B));
        }
        std::fill(mask_.begin() + std::ptrdiff_t(B), mask_.end(), std::uint8_t{1});
        const prediction native = inner_.predicts();
        try {
            inner_.predict(tensor_view<const T, S>(x2), a2_, s2_, native, o2, t2_, first_sample, mask_);
        } catch (const error& e) {  // name the doubled batch, whose sample numbers the inner message uses
            detail::fail(where, "in the doubled batch the network saw (2 x " + std::to_string(B) +
                                    " samples: b conditional, " + std::to_string(B) + " + b unconditional): " +
                                    std::string(detail::error_text(e)));
        }
        const tensor_view<T, S> c{o2.data, B, D}, u{o2.data + B * D, B, D};
        lincomb(c, 1.0, c, -1.0, u);              // ĉ − û
        lincomb(out, 1.0, u, scale_, c);          // û + w·(ĉ − û)
        if (rescale_ > 0) {
            lincomb(c, 1.0, u, 1.0, c);  // ĉ again, for its std
            // the variances and k stay in S: on device tensors nothing is read on the host (a graph captures it)
            const auto v = scratch_.template get<double, S>(2, 3, B);
            const tensor_view<double, S> var_c{v.data, 1, B}, var_g{v.data + B, 1, B}, k{v.data + 2 * B, 1, B};
            variance(tensor_view<const T, S>(c), var_c);
            variance(tensor_view<const T, S>(out), var_g);
            detail::for_each_sample<S>(B, detail::rescale_factor_body{var_c.data, var_g.data, rescale_, k.data}, where);
            lincomb(out, per_sample(k), out);  // φ·ĝ·ratio + (1 − φ)·ĝ
        }
        if (want != native) {
            ka_.resize(B);
            k_.resize(B);
            for (std::size_t b = 0; b < B; ++b) {
                const auto cc = convert_coefficients(native, want, alpha[b], sigma[b]);
                ka_[b] = cc.a;
                k_[b] = cc.b;
            }
            lincomb(out, per_sample(ka_), x, per_sample(k_), out);
        }
    }

    Inner& inner_;
    double scale_, rescale_;
    detail::scratch_tensors<3> scratch_;  // 0: x stacked twice, 1: the network's 2B outputs, 2: rescale's doubles
    std::vector<double> a2_, s2_, t2_, k_, ka_;
    std::vector<std::uint8_t> mask_;
};

}  // namespace diffuse
