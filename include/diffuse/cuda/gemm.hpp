#pragma once
// Single-precision GEMM on device memory with cuBLAS's column-major contract (cublasSgemm):
//
//   C ← α·op(A)·op(B) + β·C,   op(A) m×k, op(B) k×n, C m×n;   X(i, j) = X[i + j·ldX]  (column-major)
//   op(X) = X (gemm_op::none) or Xᵀ (gemm_op::transpose): A is stored m×k (lda ≥ m) or k×m (lda ≥ k),
//   B k×n (ldb ≥ k) or n×k (ldb ≥ n), ldc ≥ m; β = 0 does not read C (it may hold NaN), as in cuBLAS.
//
// and its strided-batched form (cublasSgemmStridedBatched): for p in [0, batch) the same product on
// A + p·stride_a, B + p·stride_b, C + p·stride_c. A row-major matrix is the column-major matrix of its
// transpose, so a row-major Y[R, N] = X[R, K]·W[K, N] is the call m = N, n = R, k = K, A = W (lda = N),
// B = X (ldb = K), C = Y (ldc = N), both ops none: how the device U-Net calls it.
//
// device_gemm_ex is the same contract with the operands A and B in a lower precision and float accumulation
// (cublasGemmEx / cublasGemmStridedBatchedEx; cuda/reduced_precision.hpp's device_precision): fp32 is the
// sgemm above; tf32 takes float A, B and computes with CUBLAS_COMPUTE_32F_FAST_TF32 (tensor cores, operands
// rounded to TF32); bf16 / fp16 take A, B as std::uint16_t bit patterns (CUDA_R_16BF / CUDA_R_16F) and C float
// (CUDA_R_32F) with CUBLAS_COMPUTE_32F. α, β, C and every sum are float.
//
// device_gemm_bias is device_gemm_ex at batch 1 with a bias epilogue in the same call, through cuBLASLt
// (cublasLtMatmul with CUBLASLT_EPILOGUE_BIAS; the device U-Net's bias-only epilogues):
//   C(i, j) ← (α·Σ_p op(A)(i, p)·op(B)(p, j) + β·C(i, j)) + bias[i]
// The algorithm is cuBLASLt's first heuristic answer for the problem and its pointers' alignments, cached per
// thread; when there is none (or k = 0) the call does nothing and returns false, and the caller runs the GEMM
// and its own epilogue.
//
//   compiled by a CUDA compiler, or   cuBLAS on the current stream (ordered with the launcher's kernels) through
//   a host compiler with the CUDA     one cublasHandle_t per host thread, created on first use; every status
//   toolkit's headers                 other than CUBLAS_STATUS_SUCCESS throws diffuse::error naming the call.
//                                     Plain FP32 (cublasSgemm with the handle's default math mode): no TF32,
//                                     so results match a float CPU product to float rounding (summation order).
//   DIFFUSE_CUDA_ON_HOST              a plain host loop with exactly the same contract (device memory is host
//                                     memory there), so the host-run tests check every argument mapping made:
//                                     C(i, j) = α·(Σ_p op(A)(i, p)·op(B)(p, j), p ascending, in float) + β·C(i, j),
//                                     each operand taken as the product sees it (bf16/fp16 decoded exactly, TF32
//                                     rounded to nearest even: the tensor cores' rounding may differ in the last
//                                     TF32 bit, so a host-run TF32 result is the GPU's to a tolerance, not bits).
//
// Every argument is checked first (dimensions and leading dimensions within cuBLAS's int range and the
// minimum above, pointers non-null when the product is non-empty, an operand storage that matches the
// precision): a named diffuse::error, never UB.

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

#include "diffuse/core/error.hpp"
#include "diffuse/cuda/memory.hpp"
#include "diffuse/cuda/reduced_precision.hpp"

#if !defined(DIFFUSE_CUDA_ON_HOST)
#include <cublasLt.h>
#include <cublas_v2.h>

#include <memory>
#include <vector>
#endif

namespace diffuse {

enum class gemm_op { none, transpose };

namespace detail {

inline void require_gemm_arguments(const char* where, gemm_op op_a, gemm_op op_b, std::size_t m, std::size_t n,
                                   std::size_t k, const void* a, std::size_t lda, const void* b, std::size_t ldb,
                                   const void* c, std::size_t ldc, std::size_t batch) {
    constexpr std::size_t int_max = INT_MAX;
    auto within_int = [&](std::size_t v, const char* name) {
        if (v > int_max) fail(where, std::string(name) + " = " + std::to_string(v) + " exceeds cuBLAS's int range");
    };
    within_int(m, "m");
    within_int(n, "n");
    within_int(k, "k");
    within_int(lda, "lda");
    within_int(ldb, "ldb");
    within_int(ldc, "ldc");
    within_int(batch, "batch");
    auto at_least = [&](std::size_t ld, std::size_t rows, const char* name) {
        const std::size_t min = rows > 0 ? rows : 1;
        if (ld < min) fail(where, std::string(name) + " = " + std::to_string(ld) + " is below " + std::to_string(min));
    };
    at_least(lda, op_a == gemm_op::none ? m : k, "lda");
    at_least(ldb, op_b == gemm_op::none ? k : n, "ldb");
    at_least(ldc, m, "ldc");
    if (m == 0 || n == 0 || batch == 0) return;
    if (c == nullptr) fail(where, "C is null");
    if (k > 0 && (a == nullptr || b == nullptr)) fail(where, "A and B must not be null when k > 0");
}
inline void require_gemm_strides(const char* where, std::size_t stride_a, std::size_t stride_b, std::size_t stride_c) {
    constexpr std::size_t stride_max = LLONG_MAX;
    if (stride_a > stride_max || stride_b > stride_max || stride_c > stride_max)
        fail(where, "a stride exceeds cuBLAS's long long range");
}

#if defined(DIFFUSE_CUDA_ON_HOST)
// The contract as a host loop over operands stored as Operand::storage, each multiplied as Operand::decode
// gives it (cuda/reduced_precision.hpp; fp32_operand: the float itself).
template <class Operand>
void gemm_strided_batched_loop(gemm_op op_a, gemm_op op_b, std::size_t m, std::size_t n, std::size_t k, float alpha,
                               const typename Operand::storage* a, std::size_t lda, std::size_t stride_a,
                               const typename Operand::storage* b, std::size_t ldb, std::size_t stride_b, float beta,
                               float* c, std::size_t ldc, std::size_t stride_c, std::size_t batch,
                               const float* bias = nullptr) {
    if (c == nullptr) return;  // an empty product (the only case the argument checks let through)
    for (std::size_t p = 0; p < batch; ++p) {
        const auto* ap = a + p * stride_a;
        const auto* bp = b + p * stride_b;
        float* cp = c + p * stride_c;
        for (std::size_t j = 0; j < n; ++j) {
            for (std::size_t i = 0; i < m; ++i) {
                float acc = 0.0f;
                for (std::size_t q = 0; q < k; ++q) {
                    const float av = Operand::decode(op_a == gemm_op::none ? ap[i + q * lda] : ap[q + i * lda]);
                    const float bv = Operand::decode(op_b == gemm_op::none ? bp[q + j * ldb] : bp[j + q * ldb]);
                    acc += av * bv;
                }
                float& out = cp[i + j * ldc];
                out = beta == 0.0f ? alpha * acc : alpha * acc + beta * out;
                if (bias != nullptr) out += bias[i];
            }
        }
    }
}
// (run now, or recorded while a CUDA graph capture records: cuda/runtime.hpp)
template <class Operand>
void gemm_ex_strided_batched(const char*, Operand, gemm_op op_a, gemm_op op_b, std::size_t m, std::size_t n, std::size_t k,
                             float alpha, const typename Operand::storage* a, std::size_t lda, std::size_t stride_a,
                             const typename Operand::storage* b, std::size_t ldb, std::size_t stride_b, float beta,
                             float* c, std::size_t ldc, std::size_t stride_c, std::size_t batch) {
    run_or_record([=] {
        gemm_strided_batched_loop<Operand>(op_a, op_b, m, n, k, alpha, a, lda, stride_a, b, ldb, stride_b, beta, c, ldc,
                                           stride_c, batch);
    });
}
inline void gemm_strided_batched(const char* where, gemm_op op_a, gemm_op op_b, std::size_t m, std::size_t n, std::size_t k,
                                 float alpha, const float* a, std::size_t lda, std::size_t stride_a, const float* b,
                                 std::size_t ldb, std::size_t stride_b, float beta, float* c, std::size_t ldc,
                                 std::size_t stride_c, std::size_t batch) {
    gemm_ex_strided_batched(where, fp32_operand{}, op_a, op_b, m, n, k, alpha, a, lda, stride_a, b, ldb, stride_b, beta, c,
                            ldc, stride_c, batch);
}
template <class Operand>
bool gemm_bias(const char*, Operand, gemm_op op_a, gemm_op op_b, std::size_t m, std::size_t n, std::size_t k, float alpha,
               const typename Operand::storage* a, std::size_t lda, const typename Operand::storage* b, std::size_t ldb,
               float beta, float* c, std::size_t ldc, const float* bias) {
    if (k == 0) return false;  // (as cuBLASLt's path: the caller's GEMM handles the empty sum)
    run_or_record([=] {
        gemm_strided_batched_loop<Operand>(op_a, op_b, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1, bias);
    });
    return true;
}
#else
[[nodiscard]] inline const char* cublas_status_name(cublasStatus_t s) {
    switch (s) {
        case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
        case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
        case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
        case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
        case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
        case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
        case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
        case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
        case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
        case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    }
    return "an unknown cuBLAS status";
}
inline void cublas_check(cublasStatus_t status, const char* where, const char* call) {
    if (status != CUBLAS_STATUS_SUCCESS)
        fail(where, std::string(call) + " failed: " + cublas_status_name(status) + " (" + std::to_string(int(status)) + ")");
}

// This host thread's cuBLAS handle, created on first use, destroyed when the thread ends; bound to the current
// stream (cuda/runtime.hpp) with a workspace of its own, so that cuBLAS allocates nothing inside a CUDA graph
// capture (cublasSetStream drops a user workspace: both are set again whenever the stream changes).
class cublas_handle {
public:
    cublas_handle(const cublas_handle&) = delete;
    cublas_handle& operator=(const cublas_handle&) = delete;
    ~cublas_handle() {
        if (handle_ != nullptr) static_cast<void>(cublasDestroy(handle_));
        raw_device_free(workspace_);
    }
    [[nodiscard]] static cublasHandle_t for_this_thread(const char* where) {
        thread_local cublas_handle h;
        if (h.handle_ == nullptr) {
            require_cuda_device(where);
            h.workspace_ = raw_device_allocate(workspace_bytes, where);
            cublas_check(cublasCreate(&h.handle_), where, "cublasCreate");
            h.bind(where);
        } else if (h.stream_ != current_stream()) {
            h.bind(where);
        }
        return h.handle_;
    }

private:
    static constexpr std::size_t workspace_bytes = std::size_t(32) << 20;  // cuBLAS's advice for Hopper
    cublas_handle() = default;
    void bind(const char* where) {
        stream_ = current_stream();
        cublas_check(cublasSetStream(handle_, stream_), where, "cublasSetStream");
        cublas_check(cublasSetWorkspace(handle_, workspace_, workspace_bytes), where, "cublasSetWorkspace");
    }
    cublasHandle_t handle_ = nullptr;
    void* workspace_ = nullptr;
    cudaStream_t stream_ = nullptr;
};

// A capture's cuBLAS calls find this thread's handle made before the capture began (cuda/runtime.hpp).
inline const bool cublas_handle_made_before_captures =
    register_capture_preparation([](const char* where) { static_cast<void>(cublas_handle::for_this_thread(where)); });

[[nodiscard]] inline cublasOperation_t cublas_op(gemm_op op) { return op == gemm_op::none ? CUBLAS_OP_N : CUBLAS_OP_T; }

// An empty sum (k = 0): C ← β·C, done here rather than left to cuBLAS, so that β = 0 writes zeros without
// reading C (a NaN there must not survive: the contract above, and the host loop's).
inline void scale_c(const char* where, cublasHandle_t handle, std::size_t m, std::size_t n, float beta, float* c,
                    std::size_t ldc, std::size_t stride_c, std::size_t batch) {
    if (m == 0 || n == 0 || beta == 1.0f) return;
    const float zero = 0.0f;
    for (std::size_t p = 0; p < batch; ++p) {
        float* cp = c + p * stride_c;
        if (beta == 0.0f)
            cuda_check(cudaMemset2DAsync(cp, ldc * sizeof(float), 0, m * sizeof(float), n, current_stream()), where,
                       "cudaMemset2DAsync");
        else  // in place: C = β·C + 0·C
            cublas_check(cublasSgeam(handle, CUBLAS_OP_N, CUBLAS_OP_N, int(m), int(n), &beta, cp, int(ldc), &zero, cp,
                                     int(ldc), cp, int(ldc)),
                         where, "cublasSgeam");
    }
}

inline void gemm_strided_batched(const char* where, gemm_op op_a, gemm_op op_b, std::size_t m, std::size_t n,
                                 std::size_t k, float alpha, const float* a, std::size_t lda, std::size_t stride_a,
                                 const float* b, std::size_t ldb, std::size_t stride_b, float beta, float* c,
                                 std::size_t ldc, std::size_t stride_c, std::size_t batch) {
    cublasHandle_t handle = cublas_handle::for_this_thread(where);
    if (k == 0) return scale_c(where, handle, m, n, beta, c, ldc, stride_c, batch);
    const int im = int(m), in = int(n), ik = int(k);
    if (batch == 1) {
        cublas_check(cublasSgemm(handle, cublas_op(op_a), cublas_op(op_b), im, in, ik, &alpha, a, int(lda), b, int(ldb), &beta,
                                 c, int(ldc)),
                     where, "cublasSgemm");
    } else {
        cublas_check(cublasSgemmStridedBatched(handle, cublas_op(op_a), cublas_op(op_b), im, in, ik, &alpha, a, int(lda),
                                               static_cast<long long>(stride_a), b, int(ldb), static_cast<long long>(stride_b),
                                               &beta, c, int(ldc), static_cast<long long>(stride_c), int(batch)),
                     where, "cublasSgemmStridedBatched");
    }
}
// TF32, BF16 and FP16 operands with float C and float accumulation: cublasGemmEx / cublasGemmStridedBatchedEx
// on the same handle (fp32_operand goes to the sgemm above).
template <class Operand>
void gemm_ex_strided_batched(const char* where, Operand, gemm_op op_a, gemm_op op_b, std::size_t m, std::size_t n,
                             std::size_t k, float alpha, const typename Operand::storage* a, std::size_t lda,
                             std::size_t stride_a, const typename Operand::storage* b, std::size_t ldb,
                             std::size_t stride_b, float beta, float* c, std::size_t ldc, std::size_t stride_c,
                             std::size_t batch) {
    if constexpr (Operand::precision == device_precision::fp32) {
        gemm_strided_batched(where, op_a, op_b, m, n, k, alpha, a, lda, stride_a, b, ldb, stride_b, beta, c, ldc, stride_c,
                             batch);
    } else {
        constexpr cudaDataType operand_type = Operand::precision == device_precision::tf32   ? CUDA_R_32F
                                              : Operand::precision == device_precision::bf16 ? CUDA_R_16BF
                                                                                             : CUDA_R_16F;
        constexpr cublasComputeType_t compute =
            Operand::precision == device_precision::tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
        cublasHandle_t handle = cublas_handle::for_this_thread(where);
        if (k == 0) return scale_c(where, handle, m, n, beta, c, ldc, stride_c, batch);
        const int im = int(m), in = int(n), ik = int(k);
        if (batch == 1) {
            cublas_check(cublasGemmEx(handle, cublas_op(op_a), cublas_op(op_b), im, in, ik, &alpha, a, operand_type, int(lda), b,
                                      operand_type, int(ldb), &beta, c, CUDA_R_32F, int(ldc), compute, CUBLAS_GEMM_DEFAULT),
                         where, "cublasGemmEx");
        } else {
            cublas_check(cublasGemmStridedBatchedEx(handle, cublas_op(op_a), cublas_op(op_b), im, in, ik, &alpha, a, operand_type,
                                                    int(lda), static_cast<long long>(stride_a), b, operand_type, int(ldb),
                                                    static_cast<long long>(stride_b), &beta, c, CUDA_R_32F, int(ldc),
                                                    static_cast<long long>(stride_c), int(batch), compute, CUBLAS_GEMM_DEFAULT),
                         where, "cublasGemmStridedBatchedEx");
        }
    }
}

// This host thread's cuBLASLt handle and its workspace, made on first use (before any capture: below).
class cublaslt_handle {
public:
    static constexpr std::size_t workspace_bytes = std::size_t(32) << 20;
    cublaslt_handle(const cublaslt_handle&) = delete;
    cublaslt_handle& operator=(const cublaslt_handle&) = delete;
    ~cublaslt_handle() {
        if (handle_ != nullptr) static_cast<void>(cublasLtDestroy(handle_));
        raw_device_free(workspace_);
    }
    [[nodiscard]] static cublaslt_handle& for_this_thread(const char* where) {
        thread_local cublaslt_handle h;
        if (h.handle_ == nullptr) {
            require_cuda_device(where);
            h.workspace_ = raw_device_allocate(workspace_bytes, where);
            cublas_check(cublasLtCreate(&h.handle_), where, "cublasLtCreate");
        }
        return h;
    }
    [[nodiscard]] cublasLtHandle_t handle() const noexcept { return handle_; }
    [[nodiscard]] void* workspace() const noexcept { return workspace_; }

private:
    cublaslt_handle() = default;
    cublasLtHandle_t handle_ = nullptr;
    void* workspace_ = nullptr;
};
inline const bool cublaslt_handle_made_before_captures =
    register_capture_preparation([](const char* where) { static_cast<void>(cublaslt_handle::for_this_thread(where)); });

// The largest power of two up to 256 that divides p's address (cuBLASLt's heuristic chooses for the alignment it
// is told).
[[nodiscard]] inline std::uint32_t pointer_alignment(const void* p) {
    const auto v = reinterpret_cast<std::uintptr_t>(p);
    std::uint32_t a = 256;
    while (a > 1 && v % a != 0) a /= 2;
    return a;
}

// cuBLASLt's descriptors for one bias-epilogue GEMM (destroyed with it) and its algorithm, when one exists.
template <class Operand>
class lt_bias_plan {
public:
    lt_bias_plan(const char* where, gemm_op op_a, gemm_op op_b, std::size_t m, std::size_t n, std::size_t k, std::size_t lda,
                 std::size_t ldb, std::size_t ldc, const std::uint32_t (&align)[3]) {
        constexpr cudaDataType operand_type = Operand::precision == device_precision::bf16   ? CUDA_R_16BF
                                              : Operand::precision == device_precision::fp16 ? CUDA_R_16F
                                                                                             : CUDA_R_32F;
        constexpr cublasComputeType_t compute =
            Operand::precision == device_precision::tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
        cublasLtMatmulDesc_t desc = nullptr;
        cublas_check(cublasLtMatmulDescCreate(&desc, compute, CUDA_R_32F), where, "cublasLtMatmulDescCreate");
        desc_.reset(desc);
        const cublasOperation_t ta = cublas_op(op_a), tb = cublas_op(op_b);
        const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
        const cudaDataType bias_type = CUDA_R_32F;
        set(desc, CUBLASLT_MATMUL_DESC_TRANSA, ta, where);
        set(desc, CUBLASLT_MATMUL_DESC_TRANSB, tb, where);
        set(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, epilogue, where);
        set(desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, bias_type, where);
        const bool a_t = op_a == gemm_op::transpose, b_t = op_b == gemm_op::transpose;
        a_.reset(layout(operand_type, a_t ? k : m, a_t ? m : k, lda, where));
        b_.reset(layout(operand_type, b_t ? n : k, b_t ? k : n, ldb, where));
        c_.reset(layout(CUDA_R_32F, m, n, ldc, where));
        cublasLtMatmulPreference_t pref = nullptr;
        cublas_check(cublasLtMatmulPreferenceCreate(&pref), where, "cublasLtMatmulPreferenceCreate");
        const std::unique_ptr<cublasLtMatmulPreferenceOpaque_t, decltype(&cublasLtMatmulPreferenceDestroy)> owned(
            pref, &cublasLtMatmulPreferenceDestroy);
        const std::size_t bytes = cublaslt_handle::workspace_bytes;
        cublas_check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &bytes, sizeof bytes),
                     where, "cublasLtMatmulPreferenceSetAttribute");
        const cublasLtMatmulPreferenceAttributes_t aligned[] = {
            CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
            CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
        for (int i = 0; i < 4; ++i)
            cublas_check(cublasLtMatmulPreferenceSetAttribute(pref, aligned[i], &align[i < 3 ? i : 2], sizeof(std::uint32_t)),
                         where, "cublasLtMatmulPreferenceSetAttribute");
        cublasLtMatmulHeuristicResult_t result{};
        int found = 0;
        const cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(cublaslt_handle::for_this_thread(where).handle(), desc,
                                                                     a_.get(), b_.get(), c_.get(), c_.get(), pref, 1, &result, &found);
        found_ = status == CUBLAS_STATUS_SUCCESS && found > 0 && result.state == CUBLAS_STATUS_SUCCESS;
        if (found_) algo_ = result.algo;
    }
    [[nodiscard]] bool found() const noexcept { return found_; }
    void run(const char* where, float alpha, const void* a, const void* b, float beta, float* c, const float* bias) const {
        set(desc_.get(), CUBLASLT_MATMUL_DESC_BIAS_POINTER, bias, where);
        const cublaslt_handle& lt = cublaslt_handle::for_this_thread(where);
        cublas_check(cublasLtMatmul(lt.handle(), desc_.get(), &alpha, a, a_.get(), b, b_.get(), &beta, c, c_.get(), c, c_.get(),
                                    &algo_, lt.workspace(), cublaslt_handle::workspace_bytes, current_stream()),
                     where, "cublasLtMatmul");
    }

private:
    template <class V>
    static void set(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attribute, const V& value, const char* where) {
        cublas_check(cublasLtMatmulDescSetAttribute(desc, attribute, &value, sizeof value), where,
                     "cublasLtMatmulDescSetAttribute");
    }
    static cublasLtMatrixLayout_t layout(cudaDataType type, std::size_t rows, std::size_t cols, std::size_t ld, const char* where) {
        cublasLtMatrixLayout_t l = nullptr;
        cublas_check(cublasLtMatrixLayoutCreate(&l, type, rows, cols, static_cast<std::int64_t>(ld)), where,
                     "cublasLtMatrixLayoutCreate");
        return l;
    }
    std::unique_ptr<cublasLtMatmulDescOpaque_t, decltype(&cublasLtMatmulDescDestroy)> desc_{nullptr, &cublasLtMatmulDescDestroy};
    std::unique_ptr<cublasLtMatrixLayoutOpaque_t, decltype(&cublasLtMatrixLayoutDestroy)> a_{nullptr, &cublasLtMatrixLayoutDestroy},
        b_{nullptr, &cublasLtMatrixLayoutDestroy}, c_{nullptr, &cublasLtMatrixLayoutDestroy};
    cublasLtMatmulAlgo_t algo_{};
    bool found_ = false;
};

template <class Operand>
bool gemm_bias(const char* where, Operand, gemm_op op_a, gemm_op op_b, std::size_t m, std::size_t n, std::size_t k,
               float alpha, const typename Operand::storage* a, std::size_t lda, const typename Operand::storage* b,
               std::size_t ldb, float beta, float* c, std::size_t ldc, const float* bias) {
    if (k == 0) return false;
    struct cached {
        gemm_op op_a, op_b;
        std::size_t m, n, k, lda, ldb, ldc;
        std::uint32_t align[3];
        std::unique_ptr<lt_bias_plan<Operand>> plan;
    };
    thread_local std::vector<cached> plans;  // (one list per operand encoding: the template's)
    const std::uint32_t align[3] = {pointer_alignment(a), pointer_alignment(b), pointer_alignment(c)};
    const auto same = [&](const cached& e) {
        return e.op_a == op_a && e.op_b == op_b && e.m == m && e.n == n && e.k == k && e.lda == lda && e.ldb == ldb &&
               e.ldc == ldc && e.align[0] == align[0] && e.align[1] == align[1] && e.align[2] == align[2];
    };
    auto it = std::find_if(plans.begin(), plans.end(), same);
    if (it == plans.end()) {
        if (plans.size() >= 512) plans.clear();  // (a bound on the host memory; a network has a few dozen shapes)
        plans.push_back({op_a, op_b, m, n, k, lda, ldb, ldc, {align[0], align[1], align[2]},
                         std::make_unique<lt_bias_plan<Operand>>(where, op_a, op_b, m, n, k, lda, ldb, ldc, align)});
        it = plans.end() - 1;
    }
    if (!it->plan->found()) return false;
    it->plan->run(where, alpha, a, b, beta, c, bias);
    return true;
}
#endif

}  // namespace detail

// C ← α·op(A)·op(B) + β·C (cublasSgemm's contract, above) on device memory.
inline void device_sgemm(gemm_op op_a, gemm_op op_b, std::size_t m, std::size_t n, std::size_t k, float alpha, const float* a,
                         std::size_t lda, const float* b, std::size_t ldb, float beta, float* c, std::size_t ldc,
                         const char* where = "device_sgemm") {
    detail::require_gemm_arguments(where, op_a, op_b, m, n, k, a, lda, b, ldb, c, ldc, 1);
    if (m == 0 || n == 0) return;
    detail::gemm_strided_batched(where, op_a, op_b, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1);
}

// For p in [0, batch): C_p ← α·op(A_p)·op(B_p) + β·C_p, X_p = X + p·stride_x (cublasSgemmStridedBatched).
inline void device_sgemm_strided_batched(gemm_op op_a, gemm_op op_b, std::size_t m, std::size_t n, std::size_t k, float alpha,
                                         const float* a, std::size_t lda, std::size_t stride_a, const float* b,
                                         std::size_t ldb, std::size_t stride_b, float beta, float* c, std::size_t ldc,
                                         std::size_t stride_c, std::size_t batch,
                                         const char* where = "device_sgemm_strided_batched") {
    detail::require_gemm_arguments(where, op_a, op_b, m, n, k, a, lda, b, ldb, c, ldc, batch);
    detail::require_gemm_strides(where, stride_a, stride_b, stride_c);
    if (m == 0 || n == 0 || batch == 0) return;
    detail::gemm_strided_batched(where, op_a, op_b, m, n, k, alpha, a, lda, stride_a, b, ldb, stride_b, beta, c, ldc,
                                 stride_c, batch);
}

// For p in [0, batch): C_p ← α·op(A_p)·op(B_p) + β·C_p (the contract above) with A and B in `precision`'s
// operand storage — float for fp32 and tf32, std::uint16_t bit patterns for bf16 and fp16 — C float, float
// accumulation (cublasGemmEx for batch 1, else cublasGemmStridedBatchedEx). A storage that does not match the
// precision, or a precision outside the enumeration, is a diffuse::error.
template <class Storage>
void device_gemm_ex(device_precision precision, gemm_op op_a, gemm_op op_b, std::size_t m, std::size_t n, std::size_t k,
                    float alpha, const Storage* a, std::size_t lda, std::size_t stride_a, const Storage* b, std::size_t ldb,
                    std::size_t stride_b, float beta, float* c, std::size_t ldc, std::size_t stride_c, std::size_t batch,
                    const char* where = "device_gemm_ex") {
    static_assert(std::is_same_v<Storage, float> || std::is_same_v<Storage, std::uint16_t>,
                  "diffuse: device_gemm_ex operands are float (fp32, tf32) or std::uint16_t bit patterns (bf16, fp16)");
    detail::with_operand(precision, where, [&](auto operand) {
        using Operand = decltype(operand);
        if constexpr (!std::is_same_v<typename Operand::storage, Storage>) {
            detail::fail(where, std::string("the ") + precision_name(precision) + " operands are " +
                                    (std::is_same_v<Storage, float> ? "float" : "16-bit") + " here, not " +
                                    (std::is_same_v<Storage, float> ? "std::uint16_t bit patterns" : "float"));
        } else {
            detail::require_gemm_arguments(where, op_a, op_b, m, n, k, a, lda, b, ldb, c, ldc, batch);
            detail::require_gemm_strides(where, stride_a, stride_b, stride_c);
            if (m == 0 || n == 0 || batch == 0) return;
            detail::gemm_ex_strided_batched(where, operand, op_a, op_b, m, n, k, alpha, a, lda, stride_a, b, ldb, stride_b, beta,
                                            c, ldc, stride_c, batch);
        }
    });
}

// C ← (α·op(A)·op(B) + β·C) + bias·1ᵀ, bias[i] added to row i (m floats): device_gemm_ex's contract at batch 1 with
// cuBLASLt's bias epilogue (above). Returns whether it ran: false — C untouched — when cuBLASLt has no algorithm
// for the problem or k = 0. A null bias, or device_gemm_ex's argument errors, are a diffuse::error.
template <class Storage>
[[nodiscard]] bool device_gemm_bias(device_precision precision, gemm_op op_a, gemm_op op_b, std::size_t m, std::size_t n,
                                    std::size_t k, float alpha, const Storage* a, std::size_t lda, const Storage* b,
                                    std::size_t ldb, float beta, float* c, std::size_t ldc, const float* bias,
                                    const char* where = "device_gemm_bias") {
    static_assert(std::is_same_v<Storage, float> || std::is_same_v<Storage, std::uint16_t>,
                  "diffuse: device_gemm_bias operands are float (fp32, tf32) or std::uint16_t bit patterns (bf16, fp16)");
    return detail::with_operand(precision, where, [&](auto operand) -> bool {
        using Operand = decltype(operand);
        if constexpr (!std::is_same_v<typename Operand::storage, Storage>) {
            detail::fail(where, std::string("the ") + precision_name(precision) + " operands are of the other storage here");
        } else {
            detail::require_gemm_arguments(where, op_a, op_b, m, n, k, a, lda, b, ldb, c, ldc, 1);
            if (m == 0 || n == 0) return true;
            if (bias == nullptr) detail::fail(where, "bias is null");
            return detail::gemm_bias(where, operand, op_a, op_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias);
        }
    });
}

}  // namespace diffuse
