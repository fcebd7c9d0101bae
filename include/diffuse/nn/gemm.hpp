#pragma once
// Single-precision matrix product on the host: a register-blocked micro-kernel over packed B panels.
//
//   packed_matrix pb(b, K, N, stride_k, stride_n);   // B(k, n) = b[k*stride_k + n*stride_n], packed once
//   matmul(M, a, lda, pb, c, ldc, {bias, residual, alpha});
//     C[m, n] = ((alpha · Σ_k A[m, k] B[k, n]) + bias[n]) + residual[m, n]     (left to right)
//
// The product Σ_k runs in increasing k, one float accumulator per output (an FMA per step on the
// AVX2+FMA path, a multiply and an add on the portable path). The epilogue then applies, in this order:
// the multiplication by alpha (skipped when alpha == 1), + bias[n], + residual[m, n]; each one rounded
// (on the AVX2 path the compiler may fuse alpha·acc + bias into one FMA when alpha != 1). The work is
// cut into the same tasks (row blocks × column groups) for any thread count and every output is computed
// by the same instructions whatever task holds it, so the bits never depend on the thread count.
//
// The micro-kernel computes a tile of 6 rows × 16 columns in 12 ymm accumulators: per k it broadcasts
// one A value per row and multiplies two 8-wide vectors of the packed B panel. Rows are read through an
// array of row pointers, each row being `nseg` contiguous segments of `seg_len` floats `seg_stride`
// apart, which lets conv2d (conv2d.hpp) run an implicit GEMM over input pixels without copying them.
// On CPUs with AVX-512F (see cpu.hpp) whole groups of 4 panels run as 6 × 64 tiles in 24 zmm accumulators:
// the same FMA sequence per output, hence the same bits as the 256-bit kernel.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <new>
#include <string>

#include "diffuse/core/error.hpp"
#include "diffuse/core/parallel.hpp"
#include "diffuse/nn/cpu.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define DIFFUSE_NN_X86 1
#else
#define DIFFUSE_NN_X86 0
#endif

namespace diffuse::nn {

namespace detail {

inline constexpr std::size_t gemm_mr = 6;             // rows per micro-tile
inline constexpr std::size_t gemm_nr = 16;            // columns per micro-tile = packed panel width
inline constexpr std::size_t gemm_block_tiles = 12;   // micro-tiles of rows per task (72 rows)
inline constexpr std::size_t gemm_group_panels = 4;   // panels of columns per task (64 columns)
inline constexpr double gemm_inline_flops = 4.0e6;    // below this many flops, run on the calling thread

// a·b, or diffuse::error naming `what` when it overflows std::size_t.
[[nodiscard]] inline std::size_t checked_mul(std::size_t a, std::size_t b, const char* where, const char* what) {
    if (a != 0 && b > std::numeric_limits<std::size_t>::max() / a)
        diffuse::detail::fail(where, std::string(what) + " overflows std::size_t");
    return a * b;
}

[[nodiscard]] inline std::size_t checked_add(std::size_t a, std::size_t b, const char* where, const char* what) {
    if (b > std::numeric_limits<std::size_t>::max() - a)
        diffuse::detail::fail(where, std::string(what) + " overflows std::size_t");
    return a + b;
}

struct aligned_free {
    void operator()(float* p) const noexcept { ::operator delete[](p, std::align_val_t(64)); }
};

// What happens to a finished tile: out = ((((alpha·acc) + bias[n]) + row_bias[g(m), n]) + residual[m, n]) / divisor,
// with g(m) = m / rows_per_group; absent terms (null pointers, alpha == 1, divide == false) are skipped.
struct tile_epilogue {
    float* c = nullptr;
    std::size_t ldc = 0;
    std::size_t n = 0;                      // valid columns of C
    float alpha = 1.0f;
    const float* bias = nullptr;            // [n]
    const float* row_bias = nullptr;        // [groups × row_bias_ld]
    std::size_t row_bias_ld = 0;
    std::size_t rows_per_group = 1;
    const float* residual = nullptr;        // row stride ldr
    std::size_t ldr = 0;
    float divisor = 1.0f;
    bool divide = false;
};

}  // namespace detail

// B (K×N, element (k, n) at b[k*stride_k + n*stride_n]) packed into panels of 16 columns,
// panel p holding B(k, 16p + j) at [p][k][j] (columns past N are zeros). A transposed matrix is packed
// by passing its strides swapped.
class packed_matrix {
public:
    packed_matrix() = default;
    packed_matrix(const float* b, std::size_t K, std::size_t N, std::ptrdiff_t stride_k, std::ptrdiff_t stride_n) {
        pack(b, K, N, stride_k, stride_n);
    }
    packed_matrix(const packed_matrix& o) { *this = o; }
    packed_matrix(packed_matrix&&) noexcept = default;
    packed_matrix& operator=(packed_matrix&&) noexcept = default;
    packed_matrix& operator=(const packed_matrix& o) {
        if (this == &o) return *this;
        const std::size_t size = o.k_ * o.panels() * detail::gemm_nr;
        reserve(size);
        std::copy(o.data_.get(), o.data_.get() + size, data_.get());
        k_ = o.k_;
        n_ = o.n_;
        return *this;
    }

    // Packs B; reuses the storage when it is big enough (no allocation when the size does not grow).
    void pack(const float* b, std::size_t K, std::size_t N, std::ptrdiff_t stride_k, std::ptrdiff_t stride_n) {
        const std::size_t panels = (N + detail::gemm_nr - 1) / detail::gemm_nr;
        const std::size_t size = detail::checked_mul(detail::checked_mul(K, panels, "packed_matrix", "K × N"),
                                                     detail::gemm_nr, "packed_matrix", "K × N");
        if (size != 0 && b == nullptr) diffuse::detail::fail("packed_matrix", "b is null but K × N > 0");
        reserve(size);
        k_ = K;
        n_ = N;
        if (size == 0) return;
        float* dst = data_.get();
        for (std::size_t p = 0; p < panels; ++p) {
            const std::size_t n0 = p * detail::gemm_nr, nv = std::min(detail::gemm_nr, N - n0);
            for (std::size_t k = 0; k < K; ++k, dst += detail::gemm_nr) {
                const float* src = b + std::ptrdiff_t(k) * stride_k + std::ptrdiff_t(n0) * stride_n;
                std::size_t j = 0;
                for (; j < nv; ++j) dst[j] = src[std::ptrdiff_t(j) * stride_n];
                for (; j < detail::gemm_nr; ++j) dst[j] = 0.0f;
            }
        }
    }

    [[nodiscard]] std::size_t rows() const noexcept { return k_; }
    [[nodiscard]] std::size_t cols() const noexcept { return n_; }
    [[nodiscard]] std::size_t panels() const noexcept { return (n_ + detail::gemm_nr - 1) / detail::gemm_nr; }
    // Panel p: rows() × 16 floats, 64-byte aligned.
    [[nodiscard]] const float* panel(std::size_t p) const noexcept { return data_.get() + p * k_ * detail::gemm_nr; }
    // The matrix B back, row-major rows() × cols() (for copying the weights elsewhere, e.g. to a device).
    [[nodiscard]] std::vector<float> unpacked() const {
        std::vector<float> b(k_ * n_);
        for (std::size_t k = 0; k < k_; ++k)
            for (std::size_t n = 0; n < n_; ++n) b[k * n_ + n] = panel(n / detail::gemm_nr)[k * detail::gemm_nr + n % detail::gemm_nr];
        return b;
    }

private:
    void reserve(std::size_t size) {
        if (size <= capacity_ && data_) return;
        const std::size_t n = std::max(size, detail::gemm_nr);
        data_.reset(static_cast<float*>(::operator new[](n * sizeof(float), std::align_val_t(64))));
        capacity_ = n;
    }

    std::unique_ptr<float[], detail::aligned_free> data_;
    std::size_t capacity_ = 0, k_ = 0, n_ = 0;
};

struct matmul_epilogue {
    const float* bias = nullptr;      // [N], added to every row
    const float* residual = nullptr;  // [M×N] with row stride ldc, added; may equal C
    float alpha = 1.0f;               // C = ((alpha·(A·B)) + bias) + residual
};

namespace detail {

// acc[i][j] = Σ_s Σ_k a[i][s·seg_stride + k] · panel[(s·seg_len + k)·16 + j], i < 6, j < 16.
inline void gemm_kernel_portable(const float* const* a, std::size_t nseg, std::size_t seg_len,
                                 std::ptrdiff_t seg_stride, const float* panel, float* acc) {
    float c[gemm_mr][gemm_nr] = {};
    for (std::size_t s = 0; s < nseg; ++s) {
        const float* ar[gemm_mr];
        for (std::size_t i = 0; i < gemm_mr; ++i) ar[i] = a[i] + std::ptrdiff_t(s) * seg_stride;
        const float* bp = panel + s * seg_len * gemm_nr;
        for (std::size_t k = 0; k < seg_len; ++k, bp += gemm_nr)
            for (std::size_t i = 0; i < gemm_mr; ++i) {
                const float x = ar[i][k];
                for (std::size_t j = 0; j < gemm_nr; ++j) c[i][j] += x * bp[j];
            }
    }
    for (std::size_t i = 0; i < gemm_mr; ++i)
        for (std::size_t j = 0; j < gemm_nr; ++j) acc[i * gemm_nr + j] = c[i][j];
}

// Rows m0..m0+mv, columns n0..n0+nv of C from the tile acc (row stride acc_ld), through the epilogue.
inline void gemm_finish_portable(const float* acc, std::size_t acc_ld, std::size_t m0, std::size_t mv, std::size_t n0,
                                 std::size_t nv, const tile_epilogue& e) {
    for (std::size_t i = 0; i < mv; ++i) {
        const std::size_t m = m0 + i;
        float* crow = e.c + m * e.ldc + n0;
        const float* rrow = e.residual ? e.residual + m * e.ldr + n0 : nullptr;
        const float* rb = e.row_bias ? e.row_bias + (m / e.rows_per_group) * e.row_bias_ld + n0 : nullptr;
        for (std::size_t j = 0; j < nv; ++j) {
            float v = acc[i * acc_ld + j];
            if (e.alpha != 1.0f) v = v * e.alpha;
            if (e.bias) v = v + e.bias[n0 + j];
            if (rb) v = v + rb[j];
            if (rrow) v = v + rrow[j];
            if (e.divide) v = v / e.divisor;
            crow[j] = v;
        }
    }
}

#if DIFFUSE_NN_X86
#define DIFFUSE_NN_AVX2 __attribute__((target("avx2,fma")))

// The same sum as gemm_kernel_portable with one FMA per step: 12 accumulators, 2 B vectors, 1 broadcast.
DIFFUSE_NN_AVX2 inline void gemm_kernel_avx2(const float* const* a, std::size_t nseg, std::size_t seg_len,
                                             std::ptrdiff_t seg_stride, const float* panel, float* acc) {
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps(),
           c11 = _mm256_setzero_ps(), c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(),
           c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps(), c40 = _mm256_setzero_ps(),
           c41 = _mm256_setzero_ps(), c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
    const float* bp = panel;
    for (std::size_t s = 0; s < nseg; ++s) {
        const std::ptrdiff_t off = std::ptrdiff_t(s) * seg_stride;
        const float *a0 = a[0] + off, *a1 = a[1] + off, *a2 = a[2] + off, *a3 = a[3] + off, *a4 = a[4] + off,
                    *a5 = a[5] + off;
        for (std::size_t k = 0; k < seg_len; ++k, bp += gemm_nr) {
            const __m256 b0 = _mm256_load_ps(bp), b1 = _mm256_load_ps(bp + 8);
            __m256 x = _mm256_broadcast_ss(a0 + k);
            c00 = _mm256_fmadd_ps(x, b0, c00);
            c01 = _mm256_fmadd_ps(x, b1, c01);
            x = _mm256_broadcast_ss(a1 + k);
            c10 = _mm256_fmadd_ps(x, b0, c10);
            c11 = _mm256_fmadd_ps(x, b1, c11);
            x = _mm256_broadcast_ss(a2 + k);
            c20 = _mm256_fmadd_ps(x, b0, c20);
            c21 = _mm256_fmadd_ps(x, b1, c21);
            x = _mm256_broadcast_ss(a3 + k);
            c30 = _mm256_fmadd_ps(x, b0, c30);
            c31 = _mm256_fmadd_ps(x, b1, c31);
            x = _mm256_broadcast_ss(a4 + k);
            c40 = _mm256_fmadd_ps(x, b0, c40);
            c41 = _mm256_fmadd_ps(x, b1, c41);
            x = _mm256_broadcast_ss(a5 + k);
            c50 = _mm256_fmadd_ps(x, b0, c50);
            c51 = _mm256_fmadd_ps(x, b1, c51);
        }
    }
    _mm256_store_ps(acc + 0, c00);
    _mm256_store_ps(acc + 8, c01);
    _mm256_store_ps(acc + 16, c10);
    _mm256_store_ps(acc + 24, c11);
    _mm256_store_ps(acc + 32, c20);
    _mm256_store_ps(acc + 40, c21);
    _mm256_store_ps(acc + 48, c30);
    _mm256_store_ps(acc + 56, c31);
    _mm256_store_ps(acc + 64, c40);
    _mm256_store_ps(acc + 72, c41);
    _mm256_store_ps(acc + 80, c50);
    _mm256_store_ps(acc + 88, c51);
}

// gemm_finish_portable with 8-wide vectors when the tile is 16 columns wide (same operations, same order).
DIFFUSE_NN_AVX2 inline void gemm_finish_avx2(const float* acc, std::size_t acc_ld, std::size_t m0, std::size_t mv,
                                             std::size_t n0, std::size_t nv, const tile_epilogue& e) {
    if (nv != gemm_nr) {
        gemm_finish_portable(acc, acc_ld, m0, mv, n0, nv, e);
        return;
    }
    const __m256 alpha = _mm256_set1_ps(e.alpha), divisor = _mm256_set1_ps(e.divisor);
    const bool scale = e.alpha != 1.0f;
    for (std::size_t i = 0; i < mv; ++i) {
        const std::size_t m = m0 + i;
        float* crow = e.c + m * e.ldc + n0;
        const float* rrow = e.residual ? e.residual + m * e.ldr + n0 : nullptr;
        const float* rb = e.row_bias ? e.row_bias + (m / e.rows_per_group) * e.row_bias_ld + n0 : nullptr;
        for (std::size_t h = 0; h < gemm_nr; h += 8) {
            __m256 v = _mm256_load_ps(acc + i * acc_ld + h);
            if (scale) v = _mm256_mul_ps(v, alpha);
            if (e.bias) v = _mm256_add_ps(v, _mm256_loadu_ps(e.bias + n0 + h));
            if (rb) v = _mm256_add_ps(v, _mm256_loadu_ps(rb + h));
            if (rrow) v = _mm256_add_ps(v, _mm256_loadu_ps(rrow + h));
            if (e.divide) v = _mm256_div_ps(v, divisor);
            _mm256_storeu_ps(crow + h, v);
        }
    }
}
#undef DIFFUSE_NN_AVX2

// With AVX-512F: the same sums for a 6 × 64 tile (4 adjacent panels, p..p+3, each K×16, contiguous) in 24
// zmm accumulators; per k one broadcast per row and 4 panel vectors. Each output still gets one FMA per k
// in increasing k, so the bits equal gemm_kernel_avx2's. acc is [6][64].
#define DIFFUSE_NN_AVX512 __attribute__((target("avx512f,avx2,fma")))
DIFFUSE_NN_AVX512 inline void gemm_kernel_avx512x4(const float* const* a, std::size_t nseg, std::size_t seg_len,
                                                   std::ptrdiff_t seg_stride, const float* panel, std::size_t K,
                                                   float* acc) {
#define DIFFUSE_NN_R(i)                                                                          \
    __m512 c##i##0 = _mm512_setzero_ps(), c##i##1 = _mm512_setzero_ps(), c##i##2 = _mm512_setzero_ps(), \
           c##i##3 = _mm512_setzero_ps();
    DIFFUSE_NN_R(0) DIFFUSE_NN_R(1) DIFFUSE_NN_R(2) DIFFUSE_NN_R(3) DIFFUSE_NN_R(4) DIFFUSE_NN_R(5)
#undef DIFFUSE_NN_R
    const std::size_t ps = K * gemm_nr;  // floats between panels
    const float* bp = panel;
    for (std::size_t s = 0; s < nseg; ++s) {
        const std::ptrdiff_t off = std::ptrdiff_t(s) * seg_stride;
        const float *a0 = a[0] + off, *a1 = a[1] + off, *a2 = a[2] + off, *a3 = a[3] + off, *a4 = a[4] + off,
                    *a5 = a[5] + off;
        for (std::size_t k = 0; k < seg_len; ++k, bp += gemm_nr) {
            const __m512 b0 = _mm512_load_ps(bp), b1 = _mm512_load_ps(bp + ps), b2 = _mm512_load_ps(bp + 2 * ps),
                         b3 = _mm512_load_ps(bp + 3 * ps);
#define DIFFUSE_NN_R(i)                                 \
    {                                                   \
        const __m512 x = _mm512_set1_ps(a##i[k]);       \
        c##i##0 = _mm512_fmadd_ps(x, b0, c##i##0);      \
        c##i##1 = _mm512_fmadd_ps(x, b1, c##i##1);      \
        c##i##2 = _mm512_fmadd_ps(x, b2, c##i##2);      \
        c##i##3 = _mm512_fmadd_ps(x, b3, c##i##3);      \
    }
            DIFFUSE_NN_R(0) DIFFUSE_NN_R(1) DIFFUSE_NN_R(2) DIFFUSE_NN_R(3) DIFFUSE_NN_R(4) DIFFUSE_NN_R(5)
#undef DIFFUSE_NN_R
        }
    }
#define DIFFUSE_NN_R(i)                                 \
    _mm512_store_ps(acc + (i) * 64 + 0, c##i##0);       \
    _mm512_store_ps(acc + (i) * 64 + 16, c##i##1);      \
    _mm512_store_ps(acc + (i) * 64 + 32, c##i##2);      \
    _mm512_store_ps(acc + (i) * 64 + 48, c##i##3);
    DIFFUSE_NN_R(0) DIFFUSE_NN_R(1) DIFFUSE_NN_R(2) DIFFUSE_NN_R(3) DIFFUSE_NN_R(4) DIFFUSE_NN_R(5)
#undef DIFFUSE_NN_R
}
#undef DIFFUSE_NN_AVX512
#endif

using gemm_kernel_fn = void (*)(const float* const*, std::size_t, std::size_t, std::ptrdiff_t, const float*, float*);
using gemm_finish_fn = void (*)(const float*, std::size_t, std::size_t, std::size_t, std::size_t, std::size_t,
                                const tile_epilogue&);

// The kernels active_isa() selects: the 6 × 16 kernel and its epilogue, and whether whole groups of 4
// panels run as 6 × 64 AVX-512 tiles.
struct gemm_kernels {
    gemm_kernel_fn kernel = gemm_kernel_portable;
    gemm_finish_fn finish = gemm_finish_portable;
    bool wide = false;
};
[[nodiscard]] inline gemm_kernels active_gemm_kernels() noexcept {
    gemm_kernels k;
#if DIFFUSE_NN_X86
    if (active_isa() == kernel_isa::avx2_fma) {
        k.kernel = gemm_kernel_avx2;
        k.finish = gemm_finish_avx2;
        k.wide = avx512_enabled().load(std::memory_order_relaxed);
    }
#endif
    return k;
}

// C rows r0..r1-1 (at most 72 rows) × panels p0..p1-1 (at most 4) = rows · B through the epilogue, on the
// calling thread; M is the row count of the whole product (the last tile of C is cut there). The rows of
// A are given as in gemm_rows.
template <class RowFn>
void gemm_block(const gemm_kernels& kk, std::size_t M, std::size_t r0, std::size_t r1, RowFn& row, std::size_t nseg,
                std::size_t seg_len, std::ptrdiff_t seg_stride, const packed_matrix& b, const tile_epilogue& e,
                std::size_t p0, std::size_t p1) {
    const std::size_t K = b.rows(), N = b.cols();
    const std::size_t ntiles = (r1 - r0 + gemm_mr - 1) / gemm_mr;
    const float* ptrs[gemm_block_tiles * gemm_mr];
    for (std::size_t r = r0; r < r1; ++r) ptrs[r - r0] = row(r);
    for (std::size_t r = r1 - r0; r < ntiles * gemm_mr; ++r) ptrs[r] = ptrs[r1 - r0 - 1];  // pad the last tile
    alignas(64) float acc[gemm_mr * gemm_nr * gemm_group_panels];
#if DIFFUSE_NN_X86
    if (kk.wide && p1 - p0 == gemm_group_panels) {
        constexpr std::size_t ld = gemm_nr * gemm_group_panels;
        const float* panel = b.panel(p0);
        for (std::size_t tl = 0; tl < ntiles; ++tl) {
            gemm_kernel_avx512x4(ptrs + tl * gemm_mr, nseg, seg_len, seg_stride, panel, K, acc);
            const std::size_t m0 = r0 + tl * gemm_mr, mv = std::min(gemm_mr, M - m0);
            for (std::size_t j = 0; j < gemm_group_panels; ++j) {
                const std::size_t n0 = (p0 + j) * gemm_nr;
                kk.finish(acc + j * gemm_nr, ld, m0, mv, n0, std::min(gemm_nr, N - n0), e);
            }
        }
        return;
    }
#endif
    for (std::size_t p = p0; p < p1; ++p) {
        const float* panel = b.panel(p);
        const std::size_t n0 = p * gemm_nr, nv = std::min(gemm_nr, N - n0);
        for (std::size_t tl = 0; tl < ntiles; ++tl) {
            kk.kernel(ptrs + tl * gemm_mr, nseg, seg_len, seg_stride, panel, acc);
            const std::size_t m0 = r0 + tl * gemm_mr;
            kk.finish(acc, gemm_nr, m0, std::min(gemm_mr, M - m0), n0, nv, e);
        }
    }
}

// C rows 0..M-1 = rows · B through the epilogue. row(m) returns the first element of row m of A; a row is
// nseg segments of seg_len floats, segment s starting at row(m) + s·seg_stride (nseg·seg_len = B.rows()).
// Tasks: blocks of 12 row tiles × groups of 4 column panels, fixed whatever the thread count.
template <class RowFn>
void gemm_rows(std::size_t M, RowFn&& row, std::size_t nseg, std::size_t seg_len, std::ptrdiff_t seg_stride,
               const packed_matrix& b, const tile_epilogue& e) {
    const std::size_t N = b.cols(), panels = b.panels();
    if (M == 0 || N == 0) return;
    const gemm_kernels kk = active_gemm_kernels();
    const std::size_t K = b.rows();
    const std::size_t block_rows = gemm_block_tiles * gemm_mr;
    const std::size_t blocks = (M + block_rows - 1) / block_rows;
    const std::size_t groups = (panels + gemm_group_panels - 1) / gemm_group_panels;
    const auto task = [&](std::size_t t) {
        const std::size_t blk = t / groups, grp = t % groups;
        const std::size_t r0 = blk * block_rows, p0 = grp * gemm_group_panels;
        gemm_block(kk, M, r0, std::min(M, r0 + block_rows), row, nseg, seg_len, seg_stride, b, e, p0,
                   std::min(panels, p0 + gemm_group_panels));
    };
    const std::size_t n_tasks = blocks * groups;
    auto& pool = diffuse::detail::thread_pool::instance();
    const double flops = 2.0 * double(M) * double(N) * double(K);
    if (pool.threads() == 1 || n_tasks == 1 || flops < gemm_inline_flops) {
        for (std::size_t t = 0; t < n_tasks; ++t) task(t);
    } else {
        pool.run(n_tasks, task);
    }
}

}  // namespace detail

// C[m, n] (row stride ldc) = ((alpha · Σ_k A[m, k] B[k, n]) + bias[n]) + residual[m, n], for A (M×K, row
// stride lda) and B packed. residual (row stride ldc) may be C itself. No allocation.
inline void matmul(std::size_t M, const float* a, std::size_t lda, const packed_matrix& b, float* c, std::size_t ldc,
                   const matmul_epilogue& e = {}) {
    const std::size_t K = b.rows(), N = b.cols();
    if (M == 0 || N == 0) return;
    if (c == nullptr) diffuse::detail::fail("matmul", "c is null");
    if (K > 0 && a == nullptr) diffuse::detail::fail("matmul", "a is null");
    diffuse::detail::require(ldc >= N, "matmul", "ldc", ldc, ">= N = " + std::to_string(N));
    if (M > 1) diffuse::detail::require(lda >= K, "matmul", "lda", lda, ">= K = " + std::to_string(K));
    detail::tile_epilogue t;
    t.c = c;
    t.ldc = ldc;
    t.n = N;
    t.alpha = e.alpha;
    t.bias = e.bias;
    t.residual = e.residual;
    t.ldr = ldc;
    if (K == 0) {  // A·B = 0: only the epilogue
        alignas(64) float zero[detail::gemm_mr * detail::gemm_nr] = {};
        for (std::size_t m0 = 0; m0 < M; m0 += detail::gemm_mr)
            for (std::size_t n0 = 0; n0 < N; n0 += detail::gemm_nr)
                detail::gemm_finish_portable(zero, detail::gemm_nr, m0, std::min(detail::gemm_mr, M - m0), n0,
                                             std::min(detail::gemm_nr, N - n0), t);
        return;
    }
    detail::gemm_rows(M, [a, lda](std::size_t m) { return a + m * lda; }, 1, K, 0, b, t);
}

}  // namespace diffuse::nn
