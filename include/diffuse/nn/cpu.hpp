#pragma once
// Run-time choice of the host kernels' instruction set.
//
//   diffuse::nn::detected_isa()   what this CPU can run: avx2_fma when it has AVX2 and FMA (x86 only)
//   diffuse::nn::active_isa()     what the kernels use now (detected, unless forced to portable)
//   diffuse::nn::set_kernel_isa(kernel_isa::portable)   force the plain C++ path (tests compare both)
//
// DIFFUSE_KERNEL_ISA=portable in the environment forces the portable path from the start (read once).
// On CPUs with AVX-512F the avx2_fma mode runs the matrix kernels (gemm.hpp) with 512-bit vectors: the
// same FMAs in the same order, so the same bits, only faster. DIFFUSE_KERNEL_ISA=avx2_fma keeps them on
// 256-bit vectors.
// The AVX2+FMA kernels are compiled in every translation unit with __attribute__((target)), without
// global -mavx2 flags, and only run when active_isa() says so.

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "diffuse/core/error.hpp"

// The attribute of AVX2+FMA element-wise kernels whose loops hold floating-point clamps or selects
// (exp_approx in activation.hpp): gcc turns such selects into vector blends only when floating-point
// comparisons may be assumed not to trap (-fno-trapping-math), which none of these kernels relies on;
// clang vectorises them as they are. Without it gcc leaves SiLU and its gradient scalar.
#if defined(__GNUC__) && !defined(__clang__)
#define DIFFUSE_NN_AVX2_SELECTS __attribute__((target("avx2,fma"), optimize("no-trapping-math")))
#else
#define DIFFUSE_NN_AVX2_SELECTS __attribute__((target("avx2,fma")))
#endif

namespace diffuse::nn {

enum class kernel_isa { portable, avx2_fma };

// The best instruction set this CPU supports (cached after the first call).
[[nodiscard]] inline kernel_isa detected_isa() noexcept {
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
    static const kernel_isa isa = [] {
        __builtin_cpu_init();
        return (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) ? kernel_isa::avx2_fma
                                                                                 : kernel_isa::portable;
    }();
    return isa;
#else
    return kernel_isa::portable;
#endif
}

namespace detail {

// Whether this CPU (and OS) runs AVX-512F code (cached).
[[nodiscard]] inline bool avx512_detected() noexcept {
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
    static const bool yes = [] {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }();
    return yes;
#else
    return false;
#endif
}

// Whether the avx2_fma mode may use the 512-bit kernels: detected, unless DIFFUSE_KERNEL_ISA=avx2_fma.
[[nodiscard]] inline std::atomic<bool>& avx512_enabled() noexcept {
    static std::atomic<bool> state{[] {
        const char* env = std::getenv("DIFFUSE_KERNEL_ISA");
        return avx512_detected() && !(env && std::strcmp(env, "avx2_fma") == 0);
    }()};
    return state;
}

// The starting choice: detected, unless DIFFUSE_KERNEL_ISA=portable.
[[nodiscard]] inline kernel_isa initial_isa() noexcept {
    const char* env = std::getenv("DIFFUSE_KERNEL_ISA");
    if (env && std::strcmp(env, "portable") == 0) return kernel_isa::portable;
    return detected_isa();
}

[[nodiscard]] inline std::atomic<kernel_isa>& isa_state() noexcept {
    static std::atomic<kernel_isa> state{initial_isa()};
    return state;
}

}  // namespace detail

// The instruction set the kernels use now.
[[nodiscard]] inline kernel_isa active_isa() noexcept { return detail::isa_state().load(std::memory_order_relaxed); }

// Selects the kernels' instruction set; avx2_fma on a CPU without AVX2+FMA throws diffuse::error.
inline void set_kernel_isa(kernel_isa isa) {
    if (isa != kernel_isa::portable && isa != kernel_isa::avx2_fma)
        diffuse::detail::fail("set_kernel_isa", "unknown kernel_isa value");
    if (isa == kernel_isa::avx2_fma && detected_isa() != kernel_isa::avx2_fma)
        diffuse::detail::fail("set_kernel_isa", "isa = avx2_fma is not supported by this CPU (no AVX2+FMA)");
    detail::isa_state().store(isa, std::memory_order_relaxed);
}

}  // namespace diffuse::nn
