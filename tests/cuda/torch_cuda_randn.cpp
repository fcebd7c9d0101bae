// torch_cuda_generator (core/torch_cuda_generator.hpp) against torch's CUDA normal kernel written out with curand's
// own device-API code (curand_kernel.h, compiled here for the host, where its Box–Muller takes the host branch:
// sinf/cosf and sin/cos of v·π instead of __sincosf / sincospi, and v's multiply-add unfused): the kernel loop of
// ATen's distribution_elementwise_grid_stride_kernel and calc_execution_policy, thread by thread. The Philox words
// must be identical; the values agree to the host branch's differences (v rounded twice, float sin/cos): 1e-5
// absolute in float (a wrong element, pass or offset is O(1) off), 1e-13 in double.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include <curand_kernel.h>

#include "diffuse/adapt/std.hpp"
#include "diffuse/core/torch_cuda_generator.hpp"

namespace {

// torch.randn(n) on CUDA with (seed, offset): every thread's loop as the kernel runs it.
template <class T>
std::vector<T> torch_kernel_with_curand(std::uint64_t seed, std::uint64_t offset, std::size_t n, diffuse::torch_cuda_device d) {
    constexpr std::uint64_t block = 256, unroll = std::is_same_v<T, float> ? 4 : 2;
    const std::uint64_t blocks = std::min<std::uint64_t>((n + block - 1) / block,
                                                         std::uint64_t(d.multiprocessors) * (d.max_threads_per_multiprocessor / block));
    const std::uint64_t threads = block * blocks, rounded = ((n - 1) / (threads * unroll) + 1) * threads * unroll;
    std::vector<T> out(n, T(-1000));
    for (std::uint64_t idx = 0; idx < threads; ++idx) {
        curandStatePhilox4_32_10_t state;
        curand_init(seed, idx, offset, &state);
        for (std::uint64_t linear = idx; linear < rounded; linear += threads * unroll) {
            T rand[unroll];
            if constexpr (std::is_same_v<T, float>) {
                const float4 r = curand_normal4(&state);
                rand[0] = r.x, rand[1] = r.y, rand[2] = r.z, rand[3] = r.w;
            } else {
                const double2 r = curand_normal2_double(&state);
                rand[0] = r.x, rand[1] = r.y;
            }
            for (std::uint64_t ii = 0; ii < unroll; ++ii)
                if (const std::uint64_t li = linear + threads * ii; li < n) out[li] = rand[ii];
        }
    }
    return out;
}

// The generator's offset after randn(n): calc_execution_policy's counter_offset.
std::uint64_t counter_offset(std::size_t n, std::uint64_t unroll, diffuse::torch_cuda_device d) {
    const std::uint64_t blocks = std::min<std::uint64_t>((n + 255) / 256, std::uint64_t(d.multiprocessors) * (d.max_threads_per_multiprocessor / 256));
    return ((n - 1) / (256 * blocks * unroll) + 1) * 4;
}

template <class T>
double max_abs_difference(const std::vector<T>& a, const std::vector<T>& b) {
    double worst = a.size() == b.size() ? 0.0 : INFINITY;
    for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) worst = std::max(worst, std::abs(double(a[i]) - double(b[i])));
    return worst;
}

}  // namespace

TEST_CASE("torch_cuda_generator's Philox blocks are curand's for torch's subsequence and offset", "[cuda_host][torch_cuda]") {
    REQUIRE(2.3283064e-10f == 0x1p-32f);  // curand's CURAND_2POW32_INV, as the header's comment reads it
    std::mt19937_64 rng(20261204);
    for (int round = 0; round < 200; ++round) {
        const std::uint64_t seed = round % 3 == 0 ? rng() : rng() % 100000, t = rng() % (round % 2 ? 300000 : 1000),
                            offset = 4 * (rng() % 1000), passes = rng() % 5;
        curandStatePhilox4_32_10_t state;
        curand_init(seed, t, offset, &state);
        uint4 w{};
        for (std::uint64_t k = 0; k <= passes; ++k) w = curand4(&state);
        const diffuse::philox4x32_block ours = diffuse::detail::torch_cuda_words(seed, offset / 4 + passes, t);
        INFO("seed " << seed << ", thread " << t << ", offset " << offset << ", pass " << passes);
        CHECK(ours.w0 == w.x);
        CHECK(ours.w1 == w.y);
        CHECK(ours.w2 == w.z);
        CHECK(ours.w3 == w.w);
    }
}

TEMPLATE_TEST_CASE("torch_cuda_generator reproduces torch's CUDA randn kernel, its element layout and its offsets",
                   "[cuda_host][torch_cuda]", float, double) {
    using T = TestType;
    const double tolerance = std::is_same_v<T, float> ? 1e-5 : 1e-13;
    constexpr std::uint64_t unroll = std::is_same_v<T, float> ? 4 : 2;
    // an H100 / H200, and a small device whose grid is capped early (several passes and every unrolled value)
    const diffuse::torch_cuda_device h100{}, small{2, 256};
    struct call {
        diffuse::torch_cuda_device device;
        std::vector<std::size_t> sizes;  // one generator, these randn calls in sequence
    };
    const call calls[] = {{h100, {1, 7, 256, 257, 4096}},
                          {h100, {300000}},  // past the H100's 270,336 threads: passes and unrolled values
                          {small, {5000, 3, 511, 513, 2048}}};
    for (const std::uint64_t seed : {std::uint64_t(0), std::uint64_t(42), std::uint64_t(0x123456789abcdefULL)}) {
        for (const call& c : calls) {
            diffuse::torch_cuda_generator g(seed, c.device);
            std::uint64_t offset = 0;
            for (const std::size_t n : c.sizes) {
                INFO("seed " << seed << ", " << c.device.multiprocessors << " SMs, n " << n << ", offset " << offset);
                REQUIRE(g.offset() == offset);
                const std::vector<T> ours = g.template randn<T>(n);
                const std::vector<T> reference = torch_kernel_with_curand<T>(seed, offset, n, c.device);
                CHECK(max_abs_difference(ours, reference) < tolerance);
                CHECK(*std::min_element(reference.begin(), reference.end()) > T(-100));  // every element written
                offset += counter_offset(n, unroll, c.device);
            }
            CHECK(g.offset() == offset);
        }
    }
}

TEST_CASE("torch_cuda_generator: seeds, offsets, prefixes and bad input", "[cuda_host][torch_cuda]") {
    diffuse::torch_cuda_generator g(7);
    const std::vector<float> a = g.randn<float>(1000);
    CHECK(g.offset() == 4);
    const std::vector<float> b = g.randn<float>(1000);
    CHECK(a != b);  // the second call draws at the next offset
    g.manual_seed(7);
    CHECK(g.offset() == 0);
    CHECK(g.randn<float>(1000) == a);
    // below the grid's cap element i is thread i's first value: a shorter call is a prefix
    g.manual_seed(7);
    const std::vector<float> prefix = g.randn<float>(300);
    CHECK(std::equal(prefix.begin(), prefix.end(), a.begin()));
    g.set_offset(4);
    CHECK(g.randn<float>(1000) == b);
    CHECK_THROWS_AS(g.set_offset(6), diffuse::error);
    CHECK_THROWS_AS(diffuse::torch_cuda_generator(1, {0, 2048}), diffuse::error);
    CHECK_THROWS_AS(g.randn(static_cast<float*>(nullptr), 3), diffuse::error);
    // a tensor in flat order, as randn of its size
    g.manual_seed(7);
    std::vector<float> x(1000);
    g.randn(diffuse::batched(x, 10));
    CHECK(x == a);
    // the values are standard normal: mean and variance of 2^16 draws
    g.manual_seed(123);
    const std::vector<double> z = g.randn<double>(1 << 16);
    double m = 0, v = 0;
    for (double e : z) m += e;
    m /= double(z.size());
    for (double e : z) v += (e - m) * (e - m);
    v /= double(z.size() - 1);
    CHECK(std::abs(m) < 5.0 / 256);  // 5 standard errors
    CHECK(std::abs(v - 1) < 5.0 * std::sqrt(2.0 / double(z.size())));
}
