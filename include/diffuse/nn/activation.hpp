#pragma once
// Element-wise activations of diffusers' `act_fn` (silu/swish, mish, gelu, relu), with a branch-free
// float exponential that the compiler vectorises, compiled for AVX2+FMA and for any CPU and chosen at
// run time (nn/cpu.hpp).
//
//   diffuse::nn::activate(diffuse::nn::activation::silu, data, n);   // in place
//
// silu(x) = x·σ(x) = x / (1 + e^{−x});  mish(x) = x·tanh(softplus(x)) = x·n/(n + 2), n = e^x(e^x + 2);
// gelu(x) = x·Φ(x) = ½x(1 + erf(x/√2)) (PyTorch's exact GELU);  relu(x) = max(x, 0).

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "diffuse/core/config.hpp"
#include "diffuse/core/error.hpp"
#include "diffuse/nn/cpu.hpp"

namespace diffuse::nn {

enum class activation { none, silu, mish, gelu, relu };

// diffusers' names: "silu" and "swish" are the same function.
[[nodiscard]] inline activation parse_activation(std::string_view name, std::string_view where) {
    if (name == "silu" || name == "swish") return activation::silu;
    if (name == "mish") return activation::mish;
    if (name == "gelu") return activation::gelu;
    if (name == "relu") return activation::relu;
    diffuse::detail::fail(where, "act_fn = \"" + std::string(name) +
                                     "\" is not one of the activations silu, swish, mish, gelu, relu");
}

namespace detail {

// e^x for float, branch-free: x = n·ln2 + r with |r| ≤ ln2/2, e^r by its Taylor polynomial to r⁷
// (truncation < 6e-9 relative, below half an ulp), 2ⁿ by building the exponent bits. Inputs are clamped
// to [−87, 88] (results from 1.6e-38 to 1.6e38): the callers only need e^x where it is finite.
DIFFUSE_ALWAYS_INLINE float exp_approx(float x) {
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    constexpr float round_magic = 12582912.0f;  // 1.5·2²³: adding and subtracting it rounds to the nearest integer
    const float n = (x * 1.44269504088896341f + round_magic) - round_magic;
    const float r = (x - n * 0.693145751953125f) - n * 1.42860682030941723212e-6f;  // ln2 split hi + lo
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const std::int32_t bits = (static_cast<std::int32_t>(n) + 127) << 23;
    float scale;
    std::memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

DIFFUSE_ALWAYS_INLINE float silu(float x) { return x / (1.0f + exp_approx(-x)); }
DIFFUSE_ALWAYS_INLINE float mish(float x) {
    const float e = exp_approx(x > 20.0f ? 20.0f : x);
    const float n = e * (e + 2.0f);
    return x > 20.0f ? x : x * n / (n + 2.0f);
}
DIFFUSE_ALWAYS_INLINE float relu(float x) { return x > 0.0f ? x : 0.0f; }

template <activation A>
DIFFUSE_ALWAYS_INLINE float apply(float x) {
    if constexpr (A == activation::silu) return silu(x);
    else if constexpr (A == activation::mish) return mish(x);
    else if constexpr (A == activation::relu) return relu(x);
    else if constexpr (A == activation::gelu)
        return static_cast<float>(0.5 * double(x) * (1.0 + std::erf(double(x) * 0.70710678118654752440)));
    else return x;
}

// The loops are written out in each kernel: gcc applies a function's target and optimisation attributes
// to the loops written in its body, not to loops of an inlined helper, so a shared loop helper would stay
// scalar in the AVX2 kernel (see DIFFUSE_NN_AVX2_SELECTS).
#if defined(__x86_64__) || defined(__i386__)
template <activation A>
DIFFUSE_NN_AVX2_SELECTS void activate_avx2(float* DIFFUSE_RESTRICT x, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) x[i] = apply<A>(x[i]);
}
#endif

template <activation A>
void activate_portable(float* DIFFUSE_RESTRICT x, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) x[i] = apply<A>(x[i]);
}

template <activation A>
void activate_dispatch(float* x, std::size_t n) {
#if defined(__x86_64__) || defined(__i386__)
    if (active_isa() == kernel_isa::avx2_fma) return activate_avx2<A>(x, n);
#endif
    activate_portable<A>(x, n);
}

// out[p, c] = act(x[p, c]·a[c] + b[c]) over `pixels` pixels of c channels.
#if defined(__x86_64__) || defined(__i386__)
template <activation A>
DIFFUSE_NN_AVX2_SELECTS void affine_activate_avx2(const float* DIFFUSE_RESTRICT x, float* DIFFUSE_RESTRICT out,
                                                  const float* DIFFUSE_RESTRICT a, const float* DIFFUSE_RESTRICT b,
                                                  std::size_t pixels, std::size_t c) {
    for (std::size_t p = 0; p < pixels; ++p)
        for (std::size_t i = 0; i < c; ++i) out[p * c + i] = apply<A>(x[p * c + i] * a[i] + b[i]);
}
#endif
template <activation A>
void affine_activate_portable(const float* DIFFUSE_RESTRICT x, float* DIFFUSE_RESTRICT out, const float* DIFFUSE_RESTRICT a,
                              const float* DIFFUSE_RESTRICT b, std::size_t pixels, std::size_t c) {
    for (std::size_t p = 0; p < pixels; ++p)
        for (std::size_t i = 0; i < c; ++i) out[p * c + i] = apply<A>(x[p * c + i] * a[i] + b[i]);
}
template <activation A>
void affine_activate(const float* x, float* out, const float* a, const float* b, std::size_t pixels, std::size_t c) {
#if defined(__x86_64__) || defined(__i386__)
    if (active_isa() == kernel_isa::avx2_fma) return affine_activate_avx2<A>(x, out, a, b, pixels, c);
#endif
    affine_activate_portable<A>(x, out, a, b, pixels, c);
}
// out[p, c] = act(x[p, c]·a[c] + b[c]) over `pixels` pixels of c channels.
inline void affine_activate(activation act, const float* x, float* out, const float* a, const float* b, std::size_t pixels,
                            std::size_t c) {
    switch (act) {
        case activation::none: return affine_activate<activation::none>(x, out, a, b, pixels, c);
        case activation::silu: return affine_activate<activation::silu>(x, out, a, b, pixels, c);
        case activation::mish: return affine_activate<activation::mish>(x, out, a, b, pixels, c);
        case activation::gelu: return affine_activate<activation::gelu>(x, out, a, b, pixels, c);
        case activation::relu: return affine_activate<activation::relu>(x, out, a, b, pixels, c);
    }
}


}  // namespace detail

// x[i] = act(x[i]) for i < n.
inline void activate(activation a, float* x, std::size_t n) {
    switch (a) {
        case activation::none: return;
        case activation::silu: return detail::activate_dispatch<activation::silu>(x, n);
        case activation::mish: return detail::activate_dispatch<activation::mish>(x, n);
        case activation::gelu: return detail::activate_dispatch<activation::gelu>(x, n);
        case activation::relu: return detail::activate_dispatch<activation::relu>(x, n);
    }
}

}  // namespace diffuse::nn
