// conv2d (nn/conv2d.hpp) and matmul (nn/gemm.hpp) against naive double-precision references, on both
// kernel ISAs, with every epilogue field; bits independent of the thread count; argument errors.
#include <catch2/catch.hpp>
#include <rapidcheck/catch.h>

#include <cmath>
#include <cstddef>
#include <random>
#include <string>
#include <vector>

#include "diffuse/core/parallel.hpp"
#include "diffuse/nn/conv2d.hpp"
#include "diffuse/nn/cpu.hpp"
#include "diffuse/nn/gemm.hpp"

using diffuse::nn::activation;
using diffuse::nn::conv2d;
using diffuse::nn::conv_algorithm;
using diffuse::nn::kernel_isa;
using diffuse::nn::padding2d;

namespace {

// A kernel configuration: the ISA, and for avx2_fma whether the 512-bit kernels may run.
struct kernel_mode {
    kernel_isa isa;
    bool avx512;
};

// Sets the kernel mode for a scope and restores the previous one.
struct isa_scope {
    kernel_isa saved = diffuse::nn::active_isa();
    bool saved512 = diffuse::nn::detail::avx512_enabled().load();
    explicit isa_scope(kernel_isa isa) { diffuse::nn::set_kernel_isa(isa); }
    explicit isa_scope(kernel_mode m) {
        diffuse::nn::set_kernel_isa(m.isa);
        diffuse::nn::detail::avx512_enabled().store(m.avx512);
    }
    ~isa_scope() {
        diffuse::nn::set_kernel_isa(saved);
        diffuse::nn::detail::avx512_enabled().store(saved512);
    }
    isa_scope(const isa_scope&) = delete;
    isa_scope& operator=(const isa_scope&) = delete;
};

struct threads_scope {
    unsigned saved = diffuse::num_threads();
    explicit threads_scope(unsigned n) { diffuse::set_num_threads(n); }
    ~threads_scope() { diffuse::set_num_threads(saved); }
    threads_scope(const threads_scope&) = delete;
    threads_scope& operator=(const threads_scope&) = delete;
};

// Every configuration this CPU runs: portable, AVX2 (256-bit kernels), AVX2 mode with AVX-512 kernels.
std::vector<kernel_mode> all_isas() {
    std::vector<kernel_mode> v{{kernel_isa::portable, false}};
    if (diffuse::nn::detected_isa() == kernel_isa::avx2_fma) v.push_back({kernel_isa::avx2_fma, false});
    if (diffuse::nn::detail::avx512_detected()) v.push_back({kernel_isa::avx2_fma, true});
    return v;
}

std::string describe(kernel_mode m) {
    return m.isa == kernel_isa::portable ? "portable" : m.avx512 ? "avx2_fma+avx512" : "avx2_fma";
}

std::vector<float> random_vector(std::size_t n, unsigned seed) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::vector<float> v(n);
    for (auto& x : v) x = u(gen);
    return v;
}

struct conv_case {
    std::size_t cin, cout, k, stride, batch, h, w;
    padding2d pad;
    bool bias, sample_bias, residual, residual_in_out;
    float divisor;
    conv_algorithm algo = conv_algorithm::automatic;
    bool prologue = false;  // x' = act(x·a[b, c] + s[b, c]) on the input
    activation act = activation::none;
};

// The prologue's input x'[b, p, c] = act(x·a[b, c] + s[b, c]) in float, as conv2d computes it.
std::vector<float> prologue_input(const conv_case& c, const std::vector<float>& x, const std::vector<float>& a,
                                  const std::vector<float>& s) {
    std::vector<float> y(x.size());
    const std::size_t hw = c.h * c.w;
    for (std::size_t b = 0; b < c.batch; ++b)
        for (std::size_t p = 0; p < hw; ++p)
            for (std::size_t ci = 0; ci < c.cin; ++ci) {
                const std::size_t i = (b * hw + p) * c.cin + ci;
                diffuse::nn::detail::affine_activate(c.act, &x[i], &y[i], &a[b * c.cin + ci], &s[b * c.cin + ci], 1, 1);
            }
    return y;
}

// Reference in double: value and Σ|terms| (the scale of the rounding error) per output.
void reference_conv(const conv_case& c, const std::vector<float>& x, const std::vector<float>& w,
                    const std::vector<float>& bias, const std::vector<float>& sb, const std::vector<float>& res,
                    std::size_t ho, std::size_t wo, std::vector<double>& out, std::vector<double>& mag) {
    out.assign(c.batch * ho * wo * c.cout, 0.0);
    mag.assign(out.size(), 0.0);
    for (std::size_t b = 0; b < c.batch; ++b)
        for (std::size_t oy = 0; oy < ho; ++oy)
            for (std::size_t ox = 0; ox < wo; ++ox)
                for (std::size_t co = 0; co < c.cout; ++co) {
                    double s = 0, m = 0;
                    for (std::size_t ky = 0; ky < c.k; ++ky)
                        for (std::size_t kx = 0; kx < c.k; ++kx) {
                            const std::ptrdiff_t y = std::ptrdiff_t(oy * c.stride + ky) - std::ptrdiff_t(c.pad.top);
                            const std::ptrdiff_t xx = std::ptrdiff_t(ox * c.stride + kx) - std::ptrdiff_t(c.pad.left);
                            if (y < 0 || xx < 0 || y >= std::ptrdiff_t(c.h) || xx >= std::ptrdiff_t(c.w)) continue;
                            for (std::size_t ci = 0; ci < c.cin; ++ci) {
                                const double t = double(x[((b * c.h + std::size_t(y)) * c.w + std::size_t(xx)) * c.cin + ci]) *
                                                 double(w[((co * c.cin + ci) * c.k + ky) * c.k + kx]);
                                s += t;
                                m += std::abs(t);
                            }
                        }
                    const std::size_t o = ((b * ho + oy) * wo + ox) * c.cout + co;
                    if (c.bias) s += bias[co], m += std::abs(bias[co]);
                    if (c.sample_bias) s += sb[b * c.cout + co], m += std::abs(sb[b * c.cout + co]);
                    if (c.residual) s += res[o], m += std::abs(res[o]);
                    out[o] = s / c.divisor;
                    mag[o] = m / std::abs(c.divisor);
                }
}

// Runs the case through conv2d::forward (with the prologue's coefficients pa, ps when c.prologue); returns
// the output.
std::vector<float> run_conv(const conv_case& c, const conv2d& conv, const std::vector<float>& x,
                            const std::vector<float>& sb, const std::vector<float>& res,
                            const std::vector<float>& pa = {}, const std::vector<float>& ps = {}) {
    const std::size_t ho = conv.out_height(c.h), wo = conv.out_width(c.w);
    std::vector<float> out(c.batch * ho * wo * c.cout, -7.0f);
    std::vector<float> scratch(conv.scratch_floats(c.batch, c.h, c.w, c.prologue), 3.0f);  // garbage: must be overwritten
    diffuse::nn::conv_prologue p;
    if (c.prologue) p = {pa.data(), ps.data(), c.cin, c.act};
    diffuse::nn::conv_epilogue e;
    e.sample_bias = c.sample_bias ? sb.data() : nullptr;
    if (c.residual) {
        if (c.residual_in_out) {
            out = res;
            e.residual = out.data();
        } else {
            e.residual = res.data();
        }
    }
    e.output_divisor = c.divisor;
    conv.forward(x.data(), c.batch, c.h, c.w, out.data(), scratch.empty() ? nullptr : scratch.data(), e, p);
    return out;
}

// Checks the case on every ISA; returns a description of the first failure, empty when all pass.
std::string check_conv(const conv_case& c, unsigned seed) {
    const auto w = random_vector(c.cout * c.cin * c.k * c.k, seed);
    const auto bias = random_vector(c.cout, seed + 1);
    const auto x = random_vector(c.batch * c.h * c.w * c.cin, seed + 2);
    const auto sb = random_vector(c.batch * c.cout, seed + 3);
    const auto pa = random_vector(c.batch * c.cin, seed + 5), ps = random_vector(c.batch * c.cin, seed + 6);
    const conv2d conv(c.cin, c.cout, c.k, c.stride, c.pad, w,
                      c.bias ? std::span<const float>(bias) : std::span<const float>(), c.algo);
    const std::size_t ho = conv.out_height(c.h), wo = conv.out_width(c.w);
    const auto res = random_vector(c.batch * ho * wo * c.cout, seed + 4);
    const double K = double(c.k * c.k * c.cin);
    // Winograd's transforms add up to 9 rounded terms more per output (entries 0, ±1, ±½).
    const double factor = conv.uses_winograd(c.batch, c.h, c.w) ? 4.0 : 1.0;
    for (const kernel_mode isa : all_isas()) {
        isa_scope scope(isa);
        // The prologue's float input as this ISA's activation kernel computes it: the kernels differ by a few
        // ulps (their own tests bound that), which must not be charged to the convolution.
        std::vector<double> ref, mag;
        reference_conv(c, c.prologue ? prologue_input(c, x, pa, ps) : x, w, bias, sb, res, ho, wo, ref, mag);
        const auto out = run_conv(c, conv, x, sb, res, pa, ps);
        for (std::size_t i = 0; i < out.size(); ++i) {
            const double tol = factor * 2.0 * (K + 4.0) * 6e-8 * mag[i] + 1e-30;
            if (!(std::abs(double(out[i]) - ref[i]) <= tol))
                return describe(isa) + " output " + std::to_string(i) + ": got " +
                       std::to_string(out[i]) + ", expected " + std::to_string(ref[i]);
        }
    }
    return {};
}

std::string describe(const conv_case& c) {
    return "cin=" + std::to_string(c.cin) + " cout=" + std::to_string(c.cout) + " k=" + std::to_string(c.k) +
           " s=" + std::to_string(c.stride) + " batch=" + std::to_string(c.batch) + " h=" + std::to_string(c.h) +
           " w=" + std::to_string(c.w) + " pad=" + std::to_string(c.pad.top) + "," + std::to_string(c.pad.left) +
           "," + std::to_string(c.pad.bottom) + "," + std::to_string(c.pad.right) + " bias=" +
           std::to_string(c.bias) + " sb=" + std::to_string(c.sample_bias) + " res=" + std::to_string(c.residual) +
           (c.residual_in_out ? "(in out)" : "") + " div=" + std::to_string(c.divisor) + " algo=" +
           std::to_string(int(c.algo)) + " prologue=" + std::to_string(c.prologue) + " act=" + std::to_string(int(c.act));
}

// C = ((alpha·A·B) + bias) + residual in double, with Σ|terms|.
void reference_matmul(std::size_t M, std::size_t N, std::size_t K, const std::vector<float>& a, std::size_t lda,
                      const std::vector<float>& b, std::ptrdiff_t sk, std::ptrdiff_t sn, const float* bias,
                      const float* res, std::size_t ldc, float alpha, std::vector<double>& out,
                      std::vector<double>& mag) {
    out.assign(M * ldc, 0.0);
    mag.assign(M * ldc, 0.0);
    for (std::size_t m = 0; m < M; ++m)
        for (std::size_t n = 0; n < N; ++n) {
            double s = 0, g = 0;
            for (std::size_t k = 0; k < K; ++k) {
                const double t = double(a[m * lda + k]) * double(b[std::size_t(std::ptrdiff_t(k) * sk + std::ptrdiff_t(n) * sn)]);
                s += t;
                g += std::abs(t);
            }
            s *= alpha;
            g *= std::abs(alpha);
            if (bias) s += bias[n], g += std::abs(bias[n]);
            if (res) s += res[m * ldc + n], g += std::abs(res[m * ldc + n]);
            out[m * ldc + n] = s;
            mag[m * ldc + n] = g;
        }
}

}  // namespace

TEST_CASE("conv2d matches a double-precision reference on random shapes", "[conv2d]") {
    rc::prop("conv2d == reference", [] {
        conv_case c{};
        c.cin = *rc::gen::element<std::size_t>(1, 2, 3, 5, 8, 16, 17, 33);
        c.cout = *rc::gen::element<std::size_t>(1, 3, 6, 8, 15, 16, 17, 31, 33, 64, 70);
        c.k = *rc::gen::element<std::size_t>(1, 3);
        c.stride = *rc::gen::element<std::size_t>(1, 2);
        const int pad_kind = *rc::gen::inRange(0, 4);
        if (pad_kind == 1) c.pad = {1, 1, 1, 1};
        if (pad_kind == 2) c.pad = {0, 0, 1, 1};
        if (pad_kind == 3)
            c.pad = {std::size_t(*rc::gen::inRange(0, 3)), std::size_t(*rc::gen::inRange(0, 3)),
                     std::size_t(*rc::gen::inRange(0, 3)), std::size_t(*rc::gen::inRange(0, 3))};
        c.batch = std::size_t(*rc::gen::inRange(1, 4));
        c.h = std::size_t(*rc::gen::inRange(1, 10));
        c.w = std::size_t(*rc::gen::inRange(1, 10));
        if (c.h + c.pad.top + c.pad.bottom < c.k) c.h = c.k;
        if (c.w + c.pad.left + c.pad.right < c.k) c.w = c.k;
        c.bias = *rc::gen::arbitrary<bool>();
        c.sample_bias = *rc::gen::arbitrary<bool>();
        c.residual = *rc::gen::arbitrary<bool>();
        c.residual_in_out = c.residual && *rc::gen::arbitrary<bool>();
        c.divisor = *rc::gen::element(1.0f, 1.41421356f, 0.5f, 3.0f);
        c.algo = c.k == 3 && c.stride == 1
                     ? *rc::gen::element(conv_algorithm::automatic, conv_algorithm::direct, conv_algorithm::winograd)
                     : *rc::gen::element(conv_algorithm::automatic, conv_algorithm::direct);
        c.prologue = *rc::gen::arbitrary<bool>();
        c.act = *rc::gen::element(activation::none, activation::silu, activation::relu);
        const unsigned seed = *rc::gen::inRange(0u, 1000u);
        const std::string failure = check_conv(c, seed);
        RC_LOG() << describe(c) << " seed=" << seed << "\n";
        RC_ASSERT(failure == std::string());
    });
}

TEST_CASE("conv2d matches the reference on the U-Net's layer kinds", "[conv2d]") {
    const std::vector<conv_case> cases = {
        {128, 64, 3, 1, 1, 8, 8, {1, 1, 1, 1}, true, true, true, false, 1.0f},      // K = 1152
        {64, 128, 3, 1, 2, 4, 4, {1, 1, 1, 1}, true, false, true, true, 1.41421356f},  // residual == out
        {3, 32, 3, 1, 2, 12, 12, {1, 1, 1, 1}, true, false, false, false, 1.0f},    // conv_in
        {64, 3, 3, 1, 2, 12, 12, {1, 1, 1, 1}, true, false, false, false, 1.0f},    // conv_out
        {64, 6, 3, 1, 1, 5, 7, {1, 1, 1, 1}, true, false, false, false, 1.0f},      // learned variance
        {32, 32, 3, 2, 2, 16, 16, {0, 0, 1, 1}, true, false, false, false, 1.0f},   // downsample_padding=0
        {32, 32, 3, 2, 1, 9, 7, {1, 1, 1, 1}, true, false, false, false, 1.0f},     // odd sizes, stride 2
        {96, 48, 1, 1, 3, 4, 4, {0, 0, 0, 0}, true, false, true, false, 1.0f},      // 1×1 shortcut
        {40, 40, 3, 1, 3, 1, 1, {1, 1, 1, 1}, false, true, false, false, 1.0f},     // 1×1 spatial
        {17, 17, 3, 1, 1, 2, 3, {1, 1, 1, 1}, true, true, true, true, 2.0f},
    };
    for (std::size_t i = 0; i < cases.size(); ++i)
        for (const conv_algorithm algo : {conv_algorithm::direct, conv_algorithm::winograd}) {
            conv_case c = cases[i];
            if (algo == conv_algorithm::winograd && !(c.k == 3 && c.stride == 1)) continue;
            c.algo = algo;
            c.prologue = i % 2 == 0;
            c.act = activation::silu;
            INFO(describe(c));
            CHECK(check_conv(c, unsigned(10 * i)) == std::string());
        }
}

TEST_CASE("conv2d: the two ISAs agree closely and each is deterministic", "[conv2d]") {
    const conv_case c{48, 40, 3, 1, 2, 7, 9, {1, 1, 1, 1}, true, true, false, false, 1.0f};
    const auto w = random_vector(c.cout * c.cin * 9, 1), bias = random_vector(c.cout, 2);
    const auto x = random_vector(c.batch * c.h * c.w * c.cin, 3), sb = random_vector(c.batch * c.cout, 4);
    const conv2d conv(c.cin, c.cout, 3, 1, c.pad, w, bias);
    std::vector<std::vector<float>> outs;
    for (const kernel_mode isa : all_isas()) {
        isa_scope scope(isa);
        CHECK(diffuse::nn::active_isa() == isa.isa);
        const auto a = run_conv(c, conv, x, sb, {});
        const auto b = run_conv(c, conv, x, sb, {});
        CHECK(a == b);
        outs.push_back(a);
    }
    for (std::size_t i = 1; i < outs.size(); ++i)
        for (std::size_t j = 0; j < outs[0].size(); ++j) REQUIRE(outs[i][j] == Approx(outs[0][j]).epsilon(1e-4).margin(1e-4));
}

TEST_CASE("conv2d and matmul: the 512-bit kernels give the 256-bit kernels' bits", "[conv2d]") {
    if (!diffuse::nn::detail::avx512_detected()) {
        SUCCEED("no AVX-512F on this CPU");
        return;
    }
    // 136 output channels: two whole groups of 4 panels (512-bit) and one partial group (256-bit)
    const conv_case c{24, 136, 3, 1, 2, 5, 7, {1, 1, 1, 1}, true, true, true, false, 1.41421356f};
    const auto w = random_vector(c.cout * c.cin * 9, 1), bias = random_vector(c.cout, 2);
    const auto x = random_vector(c.batch * c.h * c.w * c.cin, 3), sb = random_vector(c.batch * c.cout, 4);
    const auto res = random_vector(c.batch * c.h * c.w * c.cout, 5);
    const conv2d conv(c.cin, c.cout, 3, 1, c.pad, w, bias, conv_algorithm::direct);
    const conv2d wino(c.cin, c.cout, 3, 1, c.pad, w, bias, conv_algorithm::winograd);
    const std::size_t M = 53, N = 130, K = 77;
    const auto a = random_vector(M * K, 6), b = random_vector(K * N, 7), mb = random_vector(N, 8);
    const diffuse::nn::packed_matrix pb(b.data(), K, N, std::ptrdiff_t(N), 1);
    std::vector<std::vector<float>> convs, winos, mms;
    for (const bool wide : {false, true}) {
        isa_scope scope(kernel_mode{kernel_isa::avx2_fma, wide});
        convs.push_back(run_conv(c, conv, x, sb, res));
        winos.push_back(run_conv(c, wino, x, sb, res));
        std::vector<float> cm(M * N);
        diffuse::nn::matmul(M, a.data(), K, pb, cm.data(), N, {mb.data(), nullptr, 1.0f});
        mms.push_back(cm);
    }
    CHECK(convs[0] == convs[1]);
    CHECK(winos[0] == winos[1]);
    CHECK(mms[0] == mms[1]);
}

TEST_CASE("conv2d and matmul give the same bits for 1, 2 and 3 threads", "[conv2d]") {
    // Large enough to be split into tasks (above the inline threshold), with remainders everywhere.
    const conv_case c{64, 40, 3, 1, 2, 17, 15, {1, 1, 1, 1}, true, true, true, false, 1.41421356f};
    const auto w = random_vector(c.cout * c.cin * 9, 1), bias = random_vector(c.cout, 2);
    const auto x = random_vector(c.batch * c.h * c.w * c.cin, 3), sb = random_vector(c.batch * c.cout, 4);
    const conv2d conv(c.cin, c.cout, 3, 1, c.pad, w, bias, conv_algorithm::direct);
    // Winograd with several blocks of tiles (K = 16·(64 + 136) floats a tile: 1 MiB holds 81), a partial
    // output-channel group, odd sizes and the prologue.
    conv_case cw{64, 136, 3, 1, 3, 17, 15, {1, 1, 1, 1}, true, true, true, false, 1.41421356f};
    cw.algo = conv_algorithm::winograd;
    cw.prologue = true;
    cw.act = activation::silu;
    const auto ww = random_vector(cw.cout * cw.cin * 9, 11), wb = random_vector(cw.cout, 12);
    const auto wx = random_vector(cw.batch * cw.h * cw.w * cw.cin, 13), wsb = random_vector(cw.batch * cw.cout, 14);
    const auto wres = random_vector(cw.batch * cw.h * cw.w * cw.cout, 15);
    const auto pa = random_vector(cw.batch * cw.cin, 16), ps = random_vector(cw.batch * cw.cin, 17);
    const conv2d wino(cw.cin, cw.cout, 3, 1, cw.pad, ww, wb, conv_algorithm::winograd);
    const auto res = random_vector(c.batch * c.h * c.w * c.cout, 5);
    const std::size_t M = 301, N = 150, K = 97;
    const auto a = random_vector(M * K, 6), b = random_vector(K * N, 7), mb = random_vector(N, 8);
    const diffuse::nn::packed_matrix pb(b.data(), K, N, std::ptrdiff_t(N), 1);
    for (const kernel_mode isa : all_isas()) {
        isa_scope scope(isa);
        std::vector<std::vector<float>> convs, winos, mms;
        for (unsigned t : {1u, 2u, 3u}) {
            threads_scope threads(t);
            REQUIRE(diffuse::num_threads() == t);
            convs.push_back(run_conv(c, conv, x, sb, res));
            winos.push_back(run_conv(cw, wino, wx, wsb, wres, pa, ps));
            std::vector<float> cm(M * N);
            diffuse::nn::matmul(M, a.data(), K, pb, cm.data(), N, {mb.data(), nullptr, 0.5f});
            mms.push_back(cm);
        }
        CHECK(convs[0] == convs[1]);
        CHECK(convs[0] == convs[2]);
        CHECK(winos[0] == winos[1]);
        CHECK(winos[0] == winos[2]);
        CHECK(mms[0] == mms[1]);
        CHECK(mms[0] == mms[2]);
        // and the results are right, not just reproducible
        std::vector<double> ref, mag;
        reference_matmul(M, N, K, a, K, b, std::ptrdiff_t(N), 1, mb.data(), nullptr, N, 0.5f, ref, mag);
        for (std::size_t i = 0; i < M * N; ++i) REQUIRE(std::abs(mms[2][i] - ref[i]) <= 1e-5 * mag[i] + 1e-30);
    }
}

TEST_CASE("matmul matches a double-precision reference", "[conv2d][gemm]") {
    rc::prop("matmul == reference", [] {
        const auto M = std::size_t(*rc::gen::inRange(1, 40));
        const auto N = *rc::gen::element<std::size_t>(1, 3, 8, 15, 16, 17, 31, 32, 33, 64, 65, 100);
        const auto K = *rc::gen::element<std::size_t>(1, 2, 7, 8, 16, 33, 64, 130);
        const auto lda = K + std::size_t(*rc::gen::inRange(0, 3));
        const auto ldc = N + std::size_t(*rc::gen::inRange(0, 3));
        const bool transposed = *rc::gen::arbitrary<bool>();
        const bool use_bias = *rc::gen::arbitrary<bool>(), use_res = *rc::gen::arbitrary<bool>();
        const bool res_in_c = use_res && *rc::gen::arbitrary<bool>();
        const float alpha = *rc::gen::element(1.0f, 0.125f, -2.0f);
        const unsigned seed = *rc::gen::inRange(0u, 1000u);
        const auto a = random_vector(M * lda, seed), b = random_vector(K * N, seed + 1);
        const auto bias = random_vector(N, seed + 2), res = random_vector(M * ldc, seed + 3);
        // B(k, n) at b[k·sk + n·sn]: row-major K×N, or the transpose of a row-major N×K matrix
        const std::ptrdiff_t sk = transposed ? 1 : std::ptrdiff_t(N), sn = transposed ? std::ptrdiff_t(K) : 1;
        std::vector<double> ref, mag;
        reference_matmul(M, N, K, a, lda, b, sk, sn, use_bias ? bias.data() : nullptr, use_res ? res.data() : nullptr,
                         ldc, alpha, ref, mag);
        diffuse::nn::packed_matrix pb;
        const auto other = random_vector(K + 8, seed + 4);  // B(k, n) = other[k + n]: (K + 2) + 4 < K + 8 values
        pb.pack(other.data(), K + 3, 5, 1, 1);  // a different, larger matrix first: pack must reuse and redo
        pb.pack(b.data(), K, N, sk, sn);
        RC_ASSERT(pb.rows() == K);
        RC_ASSERT(pb.cols() == N);
        for (const kernel_mode isa : all_isas()) {
            isa_scope scope(isa);
            std::vector<float> c = res_in_c ? res : std::vector<float>(M * ldc, -3.0f);
            diffuse::nn::matmul_epilogue e{use_bias ? bias.data() : nullptr,
                                           use_res ? (res_in_c ? c.data() : res.data()) : nullptr, alpha};
            diffuse::nn::matmul(M, a.data(), lda, pb, c.data(), ldc, e);
            for (std::size_t m = 0; m < M; ++m) {
                for (std::size_t n = 0; n < N; ++n) {
                    const double tol = 2.0 * (double(K) + 3.0) * 6e-8 * mag[m * ldc + n] + 1e-30;
                    RC_ASSERT(std::abs(double(c[m * ldc + n]) - ref[m * ldc + n]) <= tol);
                }
                for (std::size_t n = N; n < ldc; ++n)  // padding columns untouched
                    RC_ASSERT(c[m * ldc + n] == (res_in_c ? res[m * ldc + n] : -3.0f));
            }
        }
    });
}

TEST_CASE("conv2d: sizes and errors", "[conv2d]") {
    const std::vector<float> w9(2 * 3 * 9, 0.5f), b2(2, 0.0f);
    const conv2d down(3, 2, 3, 2, {0, 0, 1, 1}, w9, b2);
    CHECK(down.in_channels() == 3);
    CHECK(down.out_channels() == 2);
    CHECK(down.kernel() == 3);
    CHECK(down.stride() == 2);
    CHECK(down.padding().bottom == 1);
    CHECK(down.padding().top == 0);
    CHECK(down.out_height(32) == 16);  // diffusers' downsample: 32 -> 16
    CHECK(down.out_width(33) == 16);
    CHECK(down.out_height(2) == 1);
    CHECK(down.scratch_floats(2, 4, 5) == 2 * 5 * 6 * 3);
    const conv2d same(3, 2, 3, 1, {1, 1, 1, 1}, w9, {});
    CHECK(same.out_height(1) == 1);
    CHECK(same.out_width(7) == 7);
    const std::vector<float> w1(2 * 3, 1.0f);
    const conv2d pointwise(3, 2, 1, 1, {}, w1, {});
    CHECK(pointwise.scratch_floats(4, 8, 8) == 0);

    using Catch::Matchers::Contains;
    // weight or bias of the wrong size
    CHECK_THROWS_AS(conv2d(3, 2, 3, 1, {1, 1, 1, 1}, std::vector<float>(53), {}), diffuse::error);
    CHECK_THROWS_WITH(conv2d(3, 2, 3, 1, {1, 1, 1, 1}, std::vector<float>(53), {}), Contains("weight"));
    CHECK_THROWS_WITH(conv2d(3, 2, 3, 1, {1, 1, 1, 1}, w9, std::vector<float>(3)), Contains("bias"));
    CHECK_THROWS_WITH(conv2d(0, 2, 3, 1, {}, {}, {}), Contains("in_channels"));
    CHECK_THROWS_WITH(conv2d(3, 2, 3, 0, {}, w9, {}), Contains("stride"));
    CHECK_THROWS_WITH(conv2d(3, 2, 0, 1, {}, {}, {}), Contains("kernel"));
    const std::size_t huge = std::size_t(1) << (sizeof(std::size_t) * 4);
    CHECK_THROWS_WITH(conv2d(huge, huge, 3, 1, {}, {}, {}), Contains("overflows"));
    // input smaller than the kernel
    const conv2d valid(3, 2, 3, 1, {}, w9, {});
    CHECK_THROWS_AS(valid.out_height(2), diffuse::error);
    CHECK_THROWS_WITH(valid.out_width(1), Contains("smaller than the kernel"));
    CHECK(valid.out_height(3) == 1);
    std::vector<float> x(2 * 2 * 3), out(16);
    CHECK_THROWS_AS(valid.forward(x.data(), 1, 2, 2, out.data(), nullptr), diffuse::error);
    // missing scratch for a padded convolution
    std::vector<float> x4(4 * 4 * 3);
    CHECK_THROWS_WITH(same.forward(x4.data(), 1, 4, 4, out.data(), nullptr), Contains("scratch"));
    // a default-constructed convolution has no weights
    CHECK_THROWS_AS(conv2d().forward(x.data(), 1, 2, 2, out.data(), nullptr), diffuse::error);
}

TEST_CASE("kernel ISA selection", "[conv2d]") {
    const kernel_isa before = diffuse::nn::active_isa();
    {
        isa_scope scope(kernel_isa::portable);
        CHECK(diffuse::nn::active_isa() == kernel_isa::portable);
    }
    CHECK(diffuse::nn::active_isa() == before);
    if (diffuse::nn::detected_isa() == kernel_isa::avx2_fma) {
        isa_scope scope(kernel_isa::avx2_fma);
        CHECK(diffuse::nn::active_isa() == kernel_isa::avx2_fma);
    } else {
        CHECK_THROWS_AS(diffuse::nn::set_kernel_isa(kernel_isa::avx2_fma), diffuse::error);
        CHECK(diffuse::nn::active_isa() == kernel_isa::portable);
    }
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    const bool cpu_has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    CHECK((diffuse::nn::detected_isa() == kernel_isa::avx2_fma) == cpu_has);
#endif
}

TEST_CASE("matmul: errors and empty products", "[conv2d][gemm]") {
    const auto b = random_vector(4 * 5, 1);
    const diffuse::nn::packed_matrix pb(b.data(), 4, 5, 5, 1);
    std::vector<float> a(3 * 4, 1.0f), c(3 * 5);
    CHECK_THROWS_WITH(diffuse::nn::matmul(3, a.data(), 4, pb, c.data(), 4), Catch::Matchers::Contains("ldc"));
    CHECK_THROWS_WITH(diffuse::nn::matmul(3, a.data(), 3, pb, c.data(), 5), Catch::Matchers::Contains("lda"));
    CHECK_THROWS_AS(diffuse::nn::packed_matrix(nullptr, 2, 2, 2, 1), diffuse::error);
    // K = 0: the product is zero, only the epilogue remains
    const diffuse::nn::packed_matrix empty(b.data(), 0, 5, 5, 1);
    const std::vector<float> bias = {1, 2, 3, 4, 5};
    std::vector<float> c2(2 * 5, 9.0f);
    diffuse::nn::matmul(2, nullptr, 0, empty, c2.data(), 5, {bias.data(), nullptr, 1.0f});
    CHECK(c2 == std::vector<float>{1, 2, 3, 4, 5, 1, 2, 3, 4, 5});
    // M = 0 writes nothing
    std::vector<float> c3(5, 9.0f);
    diffuse::nn::matmul(0, a.data(), 4, pb, c3.data(), 5);
    CHECK(c3 == std::vector<float>(5, 9.0f));
    // a copy of a packed matrix multiplies the same
    const diffuse::nn::packed_matrix copy = pb;
    std::vector<float> c4(3 * 5), c5(3 * 5);
    diffuse::nn::matmul(3, a.data(), 4, pb, c4.data(), 5);
    diffuse::nn::matmul(3, a.data(), 4, copy, c5.data(), 5);
    CHECK(c4 == c5);
    double s = 0;
    for (std::size_t k = 0; k < 4; ++k) s += double(b[k * 5 + 2]);
    CHECK(c4[5 + 2] == Approx(s).epsilon(1e-5));
}
