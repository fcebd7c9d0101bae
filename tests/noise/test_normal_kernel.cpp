// The host kernels of normal_fill (core/normal_kernel.hpp): each one, forced explicitly, reproduces the
// pinned whole-stream hashes and normal_at bit for bit for random offsets, splits and counter values.
#include <catch2/catch.hpp>
#include <rapidcheck/catch.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <vector>

#include "diffuse/core/error.hpp"
#include "diffuse/core/random.hpp"

namespace {

using diffuse::normal_kernel;

// Restores the kernel in use when a test leaves.
struct kernel_guard {
    normal_kernel saved = diffuse::active_normal_kernel();
    ~kernel_guard() { diffuse::set_normal_kernel(saved); }
};

std::vector<normal_kernel> supported_kernels() {
    std::vector<normal_kernel> ks;
    for (normal_kernel k : {normal_kernel::portable, normal_kernel::sse2, normal_kernel::avx2, normal_kernel::avx512})
        if (diffuse::normal_kernel_supported(k)) ks.push_back(k);
    return ks;
}

const char* name(normal_kernel k) {
    return k == normal_kernel::portable ? "portable"
           : k == normal_kernel::sse2   ? "sse2"
           : k == normal_kernel::avx2   ? "avx2"
                                        : "avx512";
}

template <class T>
std::uint64_t fnv_of_stream(std::size_t n, std::uint64_t seed, std::uint64_t sample, std::uint64_t draw) {
    std::vector<T> v(n);
    diffuse::normal_fill(v.data(), n, seed, sample, draw, 0);
    std::uint64_t h = 1469598103934665603ull;
    const auto* p = reinterpret_cast<const unsigned char*>(v.data());
    for (std::size_t i = 0; i < v.size() * sizeof(T); ++i) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

template <class T>
auto bits(T v) {
    if constexpr (sizeof(T) == 4) return std::bit_cast<std::uint32_t>(v);
    else return std::bit_cast<std::uint64_t>(v);
}

}  // namespace

TEST_CASE("every normal kernel reproduces the pinned whole stream", "[noise][kernel]") {
    kernel_guard guard;
    const auto ks = supported_kernels();
#if defined(__x86_64__)
    // The baseline kernels always exist on x86-64; the AVX2 one wherever the CPU has AVX2.
    REQUIRE(std::count(ks.begin(), ks.end(), normal_kernel::sse2) == 1);
    if (!diffuse::normal_kernel_supported(normal_kernel::avx2)) WARN("this CPU has no AVX2: the avx2 kernel is not tested");
    if (!diffuse::normal_kernel_supported(normal_kernel::avx512))
        WARN("this CPU has no AVX-512F: the avx512 kernel is not tested");
#endif
    for (normal_kernel k : ks) {
        diffuse::set_normal_kernel(k);
        INFO("kernel " << name(k));
        CHECK(diffuse::active_normal_kernel() == k);
        // The hashes of tests/noise/test_random.cpp (recorded with the first, scalar implementation).
        CHECK(fnv_of_stream<float>(std::size_t{1} << 20, 2024, 3, 7) == 0xe908e4632f086b4dull);
        CHECK(fnv_of_stream<double>(std::size_t{1} << 19, 2024, 3, 7) == 0xc1e299c9f975ed17ull);
    }
}

TEST_CASE("every normal kernel equals normal_at for any offset, split and counter", "[noise][kernel][property]") {
    kernel_guard guard;
    auto property = [](auto tag, normal_kernel k) {
        using T = decltype(tag);
        return [k](std::uint64_t seed, std::uint64_t sample_raw, std::uint32_t draw) {
            diffuse::set_normal_kernel(k);
            const std::uint64_t sample = sample_raw >> 4;
            const auto count = *rc::gen::inRange<std::size_t>(0, 3000);
            // Offsets anywhere, including across the 2^32-block boundary (element 2^34 for float, 2^33 for
            // double) and at the top of the range.
            const auto first = *rc::gen::oneOf(
                rc::gen::inRange<std::uint64_t>(0, 64),
                rc::gen::inRange<std::uint64_t>((std::uint64_t{1} << 34) - 3000, (std::uint64_t{1} << 34) + 1000),
                rc::gen::inRange<std::uint64_t>((std::uint64_t{1} << 33) - 3000, (std::uint64_t{1} << 33) + 1000),
                rc::gen::inRange<std::uint64_t>(diffuse::normal_element_limit - 3000, diffuse::normal_element_limit - count),
                rc::gen::inRange<std::uint64_t>(0, diffuse::normal_element_limit - 3000));
            auto cuts = *rc::gen::container<std::vector<std::size_t>>(rc::gen::inRange<std::size_t>(0, count + 1));
            cuts.push_back(0);
            cuts.push_back(count);
            std::sort(cuts.begin(), cuts.end());
            std::vector<T> out(count, T(-99));
            for (std::size_t c = 0; c + 1 < cuts.size(); ++c)
                diffuse::normal_fill(out.data() + cuts[c], cuts[c + 1] - cuts[c], seed, sample, draw, first + cuts[c]);
            for (std::size_t i = 0; i < count; ++i)
                RC_ASSERT(bits(out[i]) == bits(diffuse::normal_at<T>(seed, sample, draw, first + i)));
        };
    };
    for (normal_kernel k : supported_kernels()) {
        rc::prop(std::string("float, ") + name(k), property(float{}, k));
        rc::prop(std::string("double, ") + name(k), property(double{}, k));
    }
}

TEST_CASE("every normal kernel crosses the 2^32-block boundary under keys with every top bit", "[noise][kernel]") {
    // Word 3 of the counter holds (block >> 32) in its top four bits, which the key's high word k1 xors; a
    // kernel that adds the block-number carry after the key instead of before goes wrong exactly where k1
    // has top bits and a chunk straddles block 2^32 (element 2^34 of a float stream, 2^33 of a double one).
    kernel_guard guard;
    for (normal_kernel k : supported_kernels()) {
        diffuse::set_normal_kernel(k);
        for (std::uint64_t k1_top = 0; k1_top < 16; ++k1_top) {
            const std::uint64_t seed = (k1_top << 60) | 0x0123456789ull;
            for (const std::uint64_t boundary : {std::uint64_t{1} << 34, std::uint64_t{1} << 33}) {
                INFO("kernel " << name(k) << ", seed " << seed << ", boundary " << boundary);
                const std::uint64_t first = boundary - 301;  // chunks of every kernel straddle the boundary
                std::vector<float> f(700);
                std::vector<double> d(700);
                diffuse::normal_fill(f.data(), f.size(), seed, (std::uint64_t{1} << 56) + 5, 3, first);
                diffuse::normal_fill(d.data(), d.size(), seed, (std::uint64_t{1} << 56) + 5, 3, first);
                std::size_t wrong_f = 0, wrong_d = 0;
                for (std::size_t i = 0; i < f.size(); ++i) {
                    wrong_f += bits(f[i]) != bits(diffuse::normal_at<float>(seed, (std::uint64_t{1} << 56) + 5, 3, first + i));
                    wrong_d += bits(d[i]) != bits(diffuse::normal_at<double>(seed, (std::uint64_t{1} << 56) + 5, 3, first + i));
                }
                CHECK(wrong_f == 0);
                CHECK(wrong_d == 0);
            }
        }
    }
}

TEST_CASE("set_normal_kernel rejects unknown and unsupported kernels", "[noise][kernel][errors]") {
    kernel_guard guard;
    const normal_kernel before = diffuse::active_normal_kernel();
    CHECK_THROWS_AS(diffuse::set_normal_kernel(static_cast<normal_kernel>(7)), diffuse::error);
    CHECK_THROWS_WITH(diffuse::set_normal_kernel(static_cast<normal_kernel>(7)), Catch::Contains("unknown normal_kernel"));
    if (!diffuse::normal_kernel_supported(normal_kernel::avx2))
        CHECK_THROWS_WITH(diffuse::set_normal_kernel(normal_kernel::avx2), Catch::Contains("no AVX2"));
    if (!diffuse::normal_kernel_supported(normal_kernel::avx512))
        CHECK_THROWS_WITH(diffuse::set_normal_kernel(normal_kernel::avx512), Catch::Contains("no AVX-512F"));
    CHECK(diffuse::active_normal_kernel() == before);
    CHECK(diffuse::normal_kernel_supported(diffuse::best_normal_kernel()));
    CHECK(diffuse::normal_kernel_supported(normal_kernel::portable));
}
