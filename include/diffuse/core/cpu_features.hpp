#pragma once
// What the host CPU can run, for the kernels chosen at run time (core/normal_kernel.hpp, the finite check of
// core/reduce.hpp). Detected once; false on non-x86 builds and compilers without __builtin_cpu_supports.
//
//   diffuse::detail::host_has_avx2()      AVX2
//   diffuse::detail::host_has_avx512f()   AVX-512F
//
// DIFFUSE_HOST_X86_DISPATCH is 1 where kernels compiled with __attribute__((target(...))) can be built.

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__)) && !defined(__CUDACC__)
#define DIFFUSE_HOST_X86_DISPATCH 1
#else
#define DIFFUSE_HOST_X86_DISPATCH 0
#endif

namespace diffuse::detail {

[[nodiscard]] inline bool host_has_avx2() noexcept {
#if DIFFUSE_HOST_X86_DISPATCH
    static const bool yes = [] {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") != 0;
    }();
    return yes;
#else
    return false;
#endif
}

[[nodiscard]] inline bool host_has_avx512f() noexcept {
#if DIFFUSE_HOST_X86_DISPATCH
    static const bool yes = [] {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") != 0;
    }();
    return yes;
#else
    return false;
#endif
}

}  // namespace diffuse::detail
