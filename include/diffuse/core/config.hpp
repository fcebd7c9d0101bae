#pragma once
// Version and portability macros shared by every diffuse header.

#define DIFFUSE_VERSION_MAJOR 0
#define DIFFUSE_VERSION_MINOR 1
#define DIFFUSE_VERSION_PATCH 0

#if defined(__CUDACC__)
#define DIFFUSE_HD __host__ __device__
#else
#define DIFFUSE_HD
#endif

#if defined(__GNUC__) || defined(__clang__)
#define DIFFUSE_RESTRICT __restrict__
#define DIFFUSE_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define DIFFUSE_RESTRICT
#define DIFFUSE_ALWAYS_INLINE inline
#endif
