#pragma once
// The device GEMM (cuda/gemm.hpp) and the im2col body (cuda/nn_kernels.hpp) against their definitions, shared by
// test_cuda_host (the host loop of the GEMM contract, DIFFUSE_CUDA_ON_HOST) and test_cuda_gpu (cuBLAS):
//   GEMM   C(i, j) = α·Σ_p op(A)(i, p)·op(B)(p, j) + β·C(i, j), X(i, j) = X[i + j·ldX] (column-major), written out
//          here in double over random shapes (empty ones included), all four op combinations, leading
//          dimensions above the minimum, α, β (β = 0 with NaN in C: C is not read), batches with random strides
//          (a zero stride too: one A for every batch); the padding rows m ≤ i < ldc of C must stay untouched.
//          Bound: |device − reference| ≤ 1e-5·(α·Σ_p |a·b| + |β·c|) + 1e-30, float rounding of k ≤ 40 products
//          (≤ 40·2⁻²⁴ ≈ 2.4e-6 of that scale); a wrong index gives order 1.
//   im2col cols[r·K + (ky·k + kx)·Cin + ci] = x'[b, oy·s + ky − top, ox·s + kx − left, ci] (zero outside), written
//          out here from a zero-padded copy of the image; exact (the same float operations).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "device_checks.hpp"
#include "diffuse/cuda/gemm.hpp"
#include "diffuse/cuda/nn_kernels.hpp"

namespace diffuse_device_checks {

inline void check_gemm(std::mt19937_64& rng, log& out, int rounds) {
    using diffuse::gemm_op;
    std::uniform_int_distribution<std::size_t> dim(0, 9), kdim(0, 40), extra(0, 3), batches(1, 3), pick(0, 3);
    std::uniform_real_distribution<double> coef(-2.0, 2.0);
    for (int round = 0; round < rounds; ++round) {
        const gemm_op op_a = pick(rng) % 2 ? gemm_op::transpose : gemm_op::none;
        const gemm_op op_b = pick(rng) % 2 ? gemm_op::transpose : gemm_op::none;
        const std::size_t m = dim(rng), n = dim(rng), k = kdim(rng), batch = round % 2 ? batches(rng) : 1;
        const bool ta = op_a == gemm_op::transpose, tb = op_b == gemm_op::transpose;
        const std::size_t a_rows = ta ? k : m, a_cols = ta ? m : k, b_rows = tb ? n : k, b_cols = tb ? k : n;
        const std::size_t lda = std::max<std::size_t>(a_rows, 1) + extra(rng), ldb = std::max<std::size_t>(b_rows, 1) + extra(rng),
                          ldc = std::max<std::size_t>(m, 1) + extra(rng);
        const std::size_t size_a = lda * a_cols, size_b = ldb * b_cols, size_c = ldc * n;
        const std::size_t stride_a = batch > 1 && pick(rng) == 0 ? 0 : size_a + extra(rng), stride_b = size_b + extra(rng),
                          stride_c = size_c + extra(rng);
        const float alpha = static_cast<float>(coef(rng)), beta = pick(rng) == 0 ? 0.0f : static_cast<float>(coef(rng));
        const auto a = random_values<float>(rng, stride_a * (batch - 1) + size_a + 1);
        const auto b = random_values<float>(rng, stride_b * (batch - 1) + size_b + 1);
        auto c = random_values<float>(rng, stride_c * (batch - 1) + size_c + 1);
        if (beta == 0.0f)
            for (float& v : c) v = std::numeric_limits<float>::quiet_NaN();

        device_buffer<float> da(a.size()), db(b.size()), dc(c.size());
        diffuse::copy(da, a);
        diffuse::copy(db, b);
        diffuse::copy(dc, c);
        if (batch == 1 && round % 4 != 1)
            diffuse::device_sgemm(op_a, op_b, m, n, k, alpha, da.data(), lda, db.data(), ldb, beta, dc.data(), ldc);
        else
            diffuse::device_sgemm_strided_batched(op_a, op_b, m, n, k, alpha, da.data(), lda, stride_a, db.data(), ldb,
                                                  stride_b, beta, dc.data(), ldc, stride_c, batch);
        std::vector<float> got(c.size());
        diffuse::copy(got, dc);

        const std::string what = std::string("gemm ") + (ta ? "T" : "N") + (tb ? "T" : "N") + " m=" + std::to_string(m) +
                                 " n=" + std::to_string(n) + " k=" + std::to_string(k) + " lda=" + std::to_string(lda) +
                                 " ldb=" + std::to_string(ldb) + " ldc=" + std::to_string(ldc) + " batch=" +
                                 std::to_string(batch) + " beta=" + std::to_string(beta);
        double worst = 0.0;
        std::vector<bool> written(c.size(), false);
        for (std::size_t p = 0; p < batch; ++p)
            for (std::size_t j = 0; j < n; ++j)
                for (std::size_t i = 0; i < m; ++i) {
                    double sum = 0.0, scale = 0.0;
                    for (std::size_t q = 0; q < k; ++q) {
                        const double av = a[p * stride_a + (ta ? q + i * lda : i + q * lda)];
                        const double bv = b[p * stride_b + (tb ? j + q * ldb : q + j * ldb)];
                        sum += av * bv;
                        scale += std::abs(av * bv);
                    }
                    const std::size_t at = p * stride_c + i + j * ldc;
                    double expect = double(alpha) * sum;
                    scale *= std::abs(double(alpha));
                    if (beta != 0.0f) {
                        expect += double(beta) * double(c[at]);
                        scale += std::abs(double(beta) * double(c[at]));
                    }
                    written[at] = true;
                    const double err = std::abs(double(got[at]) - expect) / (1e-5 * scale + 1e-30);
                    worst = std::isnan(err) ? std::numeric_limits<double>::infinity() : std::max(worst, err);
                }
        out.at_most(what + ": error / (1e-5 x scale)", worst, 1.0);
        std::size_t touched = 0;
        for (std::size_t i = 0; i < c.size(); ++i)
            if (!written[i] && std::memcmp(&got[i], &c[i], sizeof(float)) != 0) ++touched;
        out.same(what + ": elements outside C changed", 0, touched);
    }
}

inline void check_im2col(std::mt19937_64& rng, log& out, int rounds) {
    namespace dk = diffuse::nn::device_kernels;
    std::uniform_int_distribution<std::size_t> batches(1, 2), size(1, 7), chans(1, 5), ks(1, 3), strides(1, 2), pads(0, 2),
        coin(0, 1);
    for (int round = 0; round < rounds; ++round) {
        const std::size_t batch = batches(rng), h = size(rng), w = size(rng), cin = chans(rng), k = ks(rng), s = strides(rng);
        const std::size_t top = pads(rng), bottom = pads(rng), left = pads(rng), right = pads(rng);
        if (h + top + bottom < k || w + left + right < k) continue;
        const std::size_t ho = (h + top + bottom - k) / s + 1, wo = (w + left + right - k) / s + 1, K = k * k * cin;
        const std::size_t rows = batch * ho * wo;
        std::uniform_int_distribution<std::size_t> first(0, rows - 1);
        const std::size_t r0 = first(rng), nr = rows - r0;
        const auto x = random_values<float>(rng, batch * h * w * cin);
        const auto coef = random_values<float>(rng, batch * 2 * cin);
        const bool affine = coin(rng) == 1;
        // x' = relu(x·scale + shift) per (sample, channel), zero-padded: the direct definition's image
        const std::size_t hp = h + top + bottom, wp = w + left + right;
        std::vector<float> padded(batch * hp * wp * cin, 0.0f);
        for (std::size_t b = 0; b < batch; ++b)
            for (std::size_t y = 0; y < h; ++y)
                for (std::size_t xx = 0; xx < w; ++xx)
                    for (std::size_t c = 0; c < cin; ++c) {
                        float v = x[((b * h + y) * w + xx) * cin + c];
                        if (affine) {
                            v = v * coef[b * 2 * cin + c] + coef[b * 2 * cin + cin + c];
                            v = v > 0.0f ? v : 0.0f;
                        }
                        padded[((b * hp + y + top) * wp + xx + left) * cin + c] = v;
                    }
        std::vector<float> expect(nr * K);
        for (std::size_t r = r0; r < rows; ++r) {
            const std::size_t ox = r % wo, oy = (r / wo) % ho, b = r / (wo * ho);
            for (std::size_t ky = 0; ky < k; ++ky)
                for (std::size_t kx = 0; kx < k; ++kx)
                    for (std::size_t c = 0; c < cin; ++c)
                        expect[(r - r0) * K + (ky * k + kx) * cin + c] =
                            padded[((b * hp + oy * s + ky) * wp + ox * s + kx) * cin + c];
        }
        device_buffer<float> dx(x.size()), dcoef(coef.size()), dcols(nr * K);
        diffuse::copy(dx, x);
        diffuse::copy(dcoef, coef);
        dk::affine_input input;
        if (affine) input = {dcoef.data(), dcoef.data() + cin, 2 * cin, diffuse::nn::activation::relu};
        diffuse::detail::launch(nr * K, dk::im2col_body{dx.data(), dcols.data(), input, r0, h, w, cin, ho, wo, k, s, top, left},
                                "im2col check");
        std::vector<float> got(nr * K);
        diffuse::copy(got, dcols);
        out.same_bits("im2col " + std::to_string(batch) + "x" + std::to_string(h) + "x" + std::to_string(w) + "x" +
                          std::to_string(cin) + " k=" + std::to_string(k) + " s=" + std::to_string(s) + " pad=" +
                          std::to_string(top) + std::to_string(bottom) + std::to_string(left) + std::to_string(right) +
                          " from row " + std::to_string(r0) + (affine ? " affine" : ""),
                      expect, got);
    }
}

}  // namespace diffuse_device_checks
