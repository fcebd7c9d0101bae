// The device backend on the host: its kernel bodies run as host loops (THRUST_DEVICE_SYSTEM_CPP, so
// diffuse/cuda/memory.hpp defines DIFFUSE_CUDA_ON_HOST), against the host primitives bit for bit.
#include <catch2/catch.hpp>
#include <rapidcheck/catch.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <thrust/device_vector.h>
#include <thrust/host_vector.h>
#include <utility>
#include <vector>

#include "device_checks.hpp"
#include "gemm_checks.hpp"
#include "graph_checks.hpp"
#include "diffuse/adapt/std.hpp"
#include "diffuse/adapt/thrust.hpp"
#include "diffuse/cuda/primitives.hpp"

#if !defined(DIFFUSE_CUDA_ON_HOST)
#error "test_cuda_host needs the device backend on the host (THRUST_DEVICE_SYSTEM=THRUST_DEVICE_SYSTEM_CPP)"
#endif

namespace checks = diffuse_device_checks;
using diffuse::memory_space;

namespace {
void require_no_failures(const checks::log& log) {
    for (const auto& f : log.failures) UNSCOPED_INFO(f);
    CHECK(log.failures.empty());
    CHECK(log.checks > 0);
}
}  // namespace

TEST_CASE("every device primitive gives the host primitive's bits on random shapes", "[cuda_host]") {
    require_no_failures(checks::check_all(20261202, 12));
}

TEST_CASE("a captured sampling run replays with the direct run's bits; what a capture cannot record is refused",
          "[cuda_host][graph]") {
    std::mt19937_64 rng(20261204);
    checks::log log;
    checks::check_graphs<float>(rng, log, 3);
    checks::check_graphs<double>(rng, log, 2);
    INFO(log.checks << " checks");
    CHECK(log.checks > 200);
    require_no_failures(log);
}

TEST_CASE("device lincomb, reductions and noise equal the host's for random configurations (property)", "[cuda_host]") {
    rc::prop("device and host bits agree", [] {
        const auto seed = *rc::gen::arbitrary<std::uint64_t>();
        std::mt19937_64 rng(seed);
        checks::log log;
        checks::check_lincomb<float>(rng, log);
        checks::check_reductions<double>(rng, log);
        checks::check_noise<float>(rng, log);
        RC_ASSERT(log.failures.empty());
    });
}

TEST_CASE("device reductions follow the host's fixed blocks: the sum is not the naive left fold", "[cuda_host]") {
    // 3 blocks of reduce_block floats whose naive sum in double differs from the blocked one: 1 then tiny
    // values that a single running sum loses but separate lanes and blocks keep.
    const std::size_t n = 3 * diffuse::detail::reduce_block + 5;
    std::vector<float> x(n, 1e-9f);
    x[0] = 1e8f;
    checks::device_buffer<float> d(n);
    diffuse::copy(d, x);
    std::vector<double> host(1), device(1);
    diffuse::mean(x, host);
    diffuse::mean(d, device);
    CHECK(std::memcmp(host.data(), device.data(), sizeof(double)) == 0);
    double naive = 0;
    for (float v : x) naive += double(v);
    CHECK(device[0] != naive / double(n));  // so the bit equality above is the blocked order's, not a naive fold's
}

TEST_CASE("space_buffer owns zeroed elements, copies deeply and moves", "[cuda_host]") {
    checks::device_buffer<double> a(10);
    std::vector<double> h(10, 1.0);
    diffuse::copy(h, a);
    CHECK(h == std::vector<double>(10, 0.0));
    std::vector<double> ramp(10);
    for (std::size_t i = 0; i < ramp.size(); ++i) ramp[i] = double(i);
    diffuse::copy(a, ramp);
    checks::device_buffer<double> b = a;
    REQUIRE(b.data() != a.data());
    diffuse::fill_normal(a.view(2, 5), 1, 2);
    diffuse::copy(h, b);
    CHECK(h == ramp);
    const double* p = b.data();
    checks::device_buffer<double> c = std::move(b);
    CHECK(c.data() == p);
    CHECK(b.size() == 0);
    CHECK(b.data() == nullptr);
    CHECK_THROWS_AS(c.view(3, 3), diffuse::error);
    CHECK(c.view(5, 2).batch == 5);

    diffuse::space_buffer<float, memory_space::host> hb(6);
    CHECK(hb.size() == 6);
    CHECK(hb.data()[5] == 0.0f);
    diffuse::fill_normal(hb.view(2, 3), 3, 0);
    std::vector<float> expect(6);
    diffuse::fill_normal(diffuse::batched(expect, 2), 3, 0);
    CHECK(std::memcmp(expect.data(), hb.data(), sizeof(float) * 6) == 0);
}

TEST_CASE("thrust vectors and raw device pointers are tensors of their memory space", "[cuda_host]") {
    STATIC_REQUIRE(diffuse::tensor_space_v<thrust::device_vector<float>> == memory_space::device);
    STATIC_REQUIRE(diffuse::tensor_space_v<thrust::host_vector<float>> == memory_space::host);
    thrust::device_vector<float> x(12, 2.0f), out(12);
    diffuse::lincomb(out, 0.5, x, 0.25, x);
    thrust::host_vector<float> back = out;
    for (float v : back) CHECK(v == 1.5f);
    const auto v = diffuse::device_view(thrust::raw_pointer_cast(out.data()), 3, 4);
    STATIC_REQUIRE(decltype(v)::space == memory_space::device);
    std::vector<double> norms(3);
    diffuse::sum_squares(v, norms);
    CHECK(norms == std::vector<double>(3, 4 * 2.25));
    thrust::host_vector<float> hx(4, 3.0f);
    diffuse::lincomb(hx, 2.0, hx);  // host path
    CHECK(hx[3] == 6.0f);
}

TEST_CASE("device primitives check shapes and ranges and throw diffuse::error", "[cuda_host]") {
    checks::device_buffer<float> a(12), b(10);
    std::vector<double> two(2), three(3);
    CHECK_THROWS_AS(diffuse::lincomb(a.view(3, 4), 1.0, b.view(2, 5)), diffuse::error);
    CHECK_THROWS_AS(diffuse::lincomb(a.view(3, 4), diffuse::per_sample(two), a.view(3, 4)), diffuse::error);
    CHECK_THROWS_AS(diffuse::clamp(a.view(3, 4), a.view(3, 4), 1.0, -1.0), diffuse::error);
    CHECK_THROWS_AS(diffuse::sum_squares(a.view(3, 4), two), diffuse::error);
    CHECK_THROWS_AS(diffuse::dot(a.view(3, 4), a.view(4, 3), three), diffuse::error);
    CHECK_THROWS_AS(diffuse::fill_normal(a.view(3, 4), 1, diffuse::normal_draw_limit), diffuse::error);
    CHECK_THROWS_AS(diffuse::fill_normal(a.view(3, 4), 1, 0, diffuse::normal_sample_limit - 2), diffuse::error);
    const std::vector<std::uint64_t> ids{0, diffuse::normal_sample_limit, 1};
    CHECK_THROWS_AS(diffuse::fill_normal(a.view(3, 4), 1, 0, std::span<const std::uint64_t>(ids)), diffuse::error);
    CHECK_THROWS_AS(diffuse::lincomb_noise(a.view(3, 4), 1.0, diffuse::normal_noise{1, diffuse::normal_draw_limit, 0}),
                    diffuse::error);
    CHECK_THROWS_AS(diffuse::copy(a.view(3, 4), b), diffuse::error);
    CHECK_THROWS_AS(diffuse::lincomb(diffuse::tensor_view<float, memory_space::device>{a.data() + 1, 3, 4}, 1.0,
                                     a.view(3, 4)),
                    diffuse::error);  // partial overlap
}

TEST_CASE("the device GEMM's host loop keeps cuBLAS's column-major contract; im2col forms the convolution's columns",
          "[cuda_host][gemm]") {
    std::mt19937_64 rng(20261203);
    checks::log log;
    checks::check_gemm(rng, log, 400);
    checks::check_im2col(rng, log, 200);
    require_no_failures(log);
}

TEST_CASE("the mixed-precision GEMM multiplies the TF32 / BF16 / FP16 operands with float accumulation",
          "[cuda_host][gemm]") {
    std::mt19937_64 rng(20261205);
    checks::log log;
    checks::check_gemm_ex(rng, log, 200);
    require_no_failures(log);
}

TEST_CASE("float to bf16 / fp16 / TF32 rounds to nearest even; the 16-bit values convert back exactly", "[cuda_host][gemm]") {
    checks::log log;
    checks::check_conversions(log);
    require_no_failures(log);
}

TEST_CASE("the device GEMM checks its arguments and throws diffuse::error", "[cuda_host][gemm]") {
    using diffuse::gemm_op;
    checks::device_buffer<float> a(64), b(64), c(64);
    const auto gemm = [&](gemm_op oa, gemm_op ob, std::size_t m, std::size_t n, std::size_t k, std::size_t lda,
                          std::size_t ldb, std::size_t ldc, float* cp) {
        diffuse::device_sgemm(oa, ob, m, n, k, 1.0f, a.data(), lda, b.data(), ldb, 0.0f, cp, ldc);
    };
    CHECK_NOTHROW(gemm(gemm_op::none, gemm_op::none, 4, 3, 2, 4, 2, 4, c.data()));
    CHECK_THROWS_AS(gemm(gemm_op::none, gemm_op::none, 4, 3, 2, 3, 2, 4, c.data()), diffuse::error);       // lda < m
    CHECK_THROWS_AS(gemm(gemm_op::transpose, gemm_op::none, 4, 3, 2, 1, 2, 4, c.data()), diffuse::error);  // lda < k
    CHECK_THROWS_AS(gemm(gemm_op::none, gemm_op::none, 4, 3, 2, 4, 1, 4, c.data()), diffuse::error);       // ldb < k
    CHECK_THROWS_AS(gemm(gemm_op::none, gemm_op::transpose, 4, 3, 2, 4, 2, 4, c.data()), diffuse::error);  // ldb < n
    CHECK_THROWS_AS(gemm(gemm_op::none, gemm_op::none, 4, 3, 2, 4, 2, 3, c.data()), diffuse::error);       // ldc < m
    CHECK_THROWS_AS(gemm(gemm_op::none, gemm_op::none, 4, 3, 2, 4, 2, 4, nullptr), diffuse::error);
    CHECK_THROWS_AS(gemm(gemm_op::none, gemm_op::none, std::size_t(1) << 31, 1, 1, std::size_t(1) << 31, 1,
                         std::size_t(1) << 31, c.data()),
                    diffuse::error);  // beyond cuBLAS's int
    CHECK_NOTHROW(gemm(gemm_op::none, gemm_op::none, 0, 3, 2, 1, 2, 1, nullptr));  // empty: nothing read or written
    CHECK_THROWS_AS(diffuse::device_sgemm_strided_batched(gemm_op::none, gemm_op::none, 2, 2, 2, 1.0f, a.data(), 2,
                                                          std::size_t(-1), b.data(), 2, 4, 0.0f, c.data(), 2, 4, 2),
                    diffuse::error);  // a stride beyond long long

    // the mixed-precision entry point: the same checks, and an operand storage that matches the precision
    using diffuse::device_precision;
    checks::device_buffer<std::uint16_t> a16(64), b16(64);
    const auto gemm_ex = [&](device_precision p, const auto* ap, const auto* bp, std::size_t lda) {
        diffuse::device_gemm_ex(p, gemm_op::none, gemm_op::none, 4, 3, 2, 1.0f, ap, lda, 8, bp, 2, 6, 0.0f, c.data(), 4, 12, 2);
    };
    CHECK_NOTHROW(gemm_ex(device_precision::bf16, a16.data(), b16.data(), 4));
    CHECK_NOTHROW(gemm_ex(device_precision::fp16, a16.data(), b16.data(), 4));
    CHECK_NOTHROW(gemm_ex(device_precision::tf32, a.data(), b.data(), 4));
    CHECK_NOTHROW(gemm_ex(device_precision::fp32, a.data(), b.data(), 4));
    CHECK_THROWS_AS(gemm_ex(device_precision::bf16, a.data(), b.data(), 4), diffuse::error);      // float for bf16
    CHECK_THROWS_AS(gemm_ex(device_precision::tf32, a16.data(), b16.data(), 4), diffuse::error);  // bits for tf32
    CHECK_THROWS_AS(gemm_ex(device_precision::fp16, a16.data(), b16.data(), 3), diffuse::error);  // lda < m
    CHECK_THROWS_AS(gemm_ex(static_cast<device_precision>(7), a.data(), b.data(), 4), diffuse::error);  // unknown
    CHECK_THROWS_AS(diffuse::device_gemm_ex(device_precision::bf16, gemm_op::none, gemm_op::none, 2, 2, 2, 1.0f, a16.data(), 2,
                                            std::size_t(-1), b16.data(), 2, 4, 0.0f, c.data(), 2, 4, 2),
                    diffuse::error);  // a stride beyond long long
}
