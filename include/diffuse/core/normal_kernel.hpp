#pragma once
// Which host kernel normal_fill (core/random.hpp) runs. Every kernel gives the same bits for the same
// (seed, sample, draw, element); they differ only in speed.
//
//   normal_kernel::portable   plain C++ (Philox in scalar code; the compiler vectorises the rest)
//   normal_kernel::sse2       Philox in SSE2 intrinsics (x86-64 baseline builds)
//   normal_kernel::avx2       float: the whole pipeline in AVX2 intrinsics (core/normal_avx2.hpp), when the
//                             CPU has AVX2; double runs the sse2 kernel
//   normal_kernel::avx512     float: the same on sixteen lanes (core/normal_avx512.hpp), when the CPU has
//                             AVX-512F; double runs the sse2 kernel
//
//   diffuse::best_normal_kernel()            the fastest kernel this build and CPU can run
//   diffuse::active_normal_kernel()          the kernel in use (best, unless set or forced)
//   diffuse::set_normal_kernel(k)            force one (tests pin each); an unsupported one throws
//
// DIFFUSE_KERNEL_ISA in the environment (the switch of nn/cpu.hpp) limits the starting kernel: portable →
// the kernel that needs no run-time detection (sse2 where the build has SSE2, portable otherwise);
// avx2_fma → at most avx2 (no 512-bit vectors).

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "diffuse/core/cpu_features.hpp"
#include "diffuse/core/error.hpp"
#include "diffuse/core/normal_avx2.hpp"
#include "diffuse/core/normal_avx512.hpp"

namespace diffuse {

enum class normal_kernel { portable, sse2, avx2, avx512 };

// Whether this build and CPU can run kernel k.
[[nodiscard]] inline bool normal_kernel_supported(normal_kernel k) noexcept {
    switch (k) {
        case normal_kernel::portable: return true;
        case normal_kernel::sse2:
#if defined(__SSE2__)
            return true;
#else
            return false;
#endif
        case normal_kernel::avx2: return DIFFUSE_NORMAL_AVX2 && detail::host_has_avx2();
        case normal_kernel::avx512: return DIFFUSE_NORMAL_AVX2 && detail::host_has_avx512f();
    }
    return false;
}

namespace detail {
[[nodiscard]] inline normal_kernel baseline_normal_kernel() noexcept {
    return normal_kernel_supported(normal_kernel::sse2) ? normal_kernel::sse2 : normal_kernel::portable;
}
}  // namespace detail

[[nodiscard]] inline normal_kernel best_normal_kernel() noexcept {
    if (normal_kernel_supported(normal_kernel::avx512)) return normal_kernel::avx512;
    return normal_kernel_supported(normal_kernel::avx2) ? normal_kernel::avx2 : detail::baseline_normal_kernel();
}

namespace detail {
[[nodiscard]] inline std::atomic<normal_kernel>& normal_kernel_state() noexcept {
    static std::atomic<normal_kernel> state{[] {
        const char* env = std::getenv("DIFFUSE_KERNEL_ISA");
        if (env && std::strcmp(env, "portable") == 0) return baseline_normal_kernel();
        if (env && std::strcmp(env, "avx2_fma") == 0 && best_normal_kernel() == normal_kernel::avx512)
            return normal_kernel::avx2;
        return best_normal_kernel();
    }()};
    return state;
}
}  // namespace detail

[[nodiscard]] inline normal_kernel active_normal_kernel() noexcept {
    return detail::normal_kernel_state().load(std::memory_order_relaxed);
}

// Selects the kernel of normal_fill (and so of fill_normal and the fused noise of lincomb_noise).
inline void set_normal_kernel(normal_kernel k) {
    if (k != normal_kernel::portable && k != normal_kernel::sse2 && k != normal_kernel::avx2 && k != normal_kernel::avx512)
        detail::fail("set_normal_kernel", "unknown normal_kernel value");
    if (!normal_kernel_supported(k))
        detail::fail("set_normal_kernel", k == normal_kernel::sse2   ? "kernel = sse2 is not available in this build (no SSE2)"
                                          : k == normal_kernel::avx2 ? "kernel = avx2 is not supported by this CPU (no AVX2)"
                                                                     : "kernel = avx512 is not supported by this CPU (no AVX-512F)");
    detail::normal_kernel_state().store(k, std::memory_order_relaxed);
}

}  // namespace diffuse
