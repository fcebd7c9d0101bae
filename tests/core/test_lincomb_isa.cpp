// lincomb's AVX2 loop (core/elementwise.hpp) against its baseline loop and against the scalar left fold,
// bit for bit: float and double, 1 to 5 terms, random lengths (the vector body and the scalar tail),
// unaligned starts, out the same array as an input, and edge values planted at random (±0, subnormals,
// ±max, ±Inf, NaN) so that a contracted multiply-add, a fold started from 0 (which turns −0 into +0) or a
// reordered sum would show. A NaN result matches any NaN (below).
#include <catch2/catch.hpp>

#include <bit>
#include <cstdint>
#include <limits>
#include <random>
#include <tuple>
#include <utility>
#include <vector>

#include "diffuse/adapt/std.hpp"
#include "diffuse/core/elementwise.hpp"

namespace {

template <class T>
auto bits_of(T v) {
    if constexpr (sizeof(T) == 4) return std::bit_cast<std::uint32_t>(v);
    else return std::bit_cast<std::uint64_t>(v);
}

// Equal bits, or both NaN: which NaN an operation with two NaN operands returns depends on the operand order
// the compiler picks for a commutative add or multiply, which IEEE 754 leaves open.
template <class T>
bool same(T a, T b) {
    return bits_of(a) == bits_of(b) || (a != a && b != b);
}

template <class T>
T random_value(std::mt19937_64& rng) {
    using L = std::numeric_limits<T>;
    const T edges[] = {T(0), T(-0.0), L::denorm_min(), -L::denorm_min(), L::min(), L::max(), -L::max(),
                       L::infinity(), -L::infinity(), L::quiet_NaN()};
    if (rng() % 8 == 0) return edges[rng() % std::size(edges)];
    std::normal_distribution<T> normal;
    return normal(rng) * T(rng() % 4 == 0 ? 1e30 : 1);
}

// The reference: ((c0·x0 + c1·x1) + c2·x2) + ..., one element at a time, each operation rounded.
template <class T, std::size_t K>
T left_fold(const T (&c)[K], const std::vector<std::vector<T>>& x, std::size_t j) {
    T acc = c[0] * x[0][j];
    for (std::size_t i = 1; i < K; ++i) {
        const T term = c[i] * x[i][j];
        acc = acc + term;
    }
    return acc;
}

template <class T, std::size_t K, std::size_t... I>
void check_terms(std::mt19937_64& rng, std::index_sequence<I...> seq) {
    for (int trial = 0; trial < 60; ++trial) {
        const std::size_t n = rng() % 70, skew = rng() % 3;  // skew: elements before the start (unaligned)
        std::vector<std::vector<T>> x(K, std::vector<T>(n + skew));
        for (auto& v : x)
            for (auto& e : v) e = random_value<T>(rng);
        T c[K];
        for (auto& e : c) e = rng() % 6 == 0 ? T(-0.0) : random_value<T>(rng);
        const auto coefs = std::make_tuple(c[I]...);
        const auto ptrs = std::make_tuple(static_cast<const T*>(x[I].data() + skew)...);
        std::vector<T> base(n + skew, T(7)), avx(n + skew, T(7));
        diffuse::detail::lincomb_loop<T>(base.data() + skew, n, coefs, ptrs, seq);
        std::size_t wrong_base = 0, wrong_avx = 0;
        for (std::size_t j = 0; j < n; ++j) wrong_base += !same(base[skew + j], left_fold(c, x, skew + j));
        CHECK(wrong_base == 0);
#if DIFFUSE_HOST_X86_DISPATCH
        if (diffuse::detail::host_has_avx2()) {
            diffuse::detail::lincomb_loop_avx2<T>(avx.data() + skew, n, coefs, ptrs, seq);
            for (std::size_t j = 0; j < n; ++j) wrong_avx += !same(avx[skew + j], base[skew + j]);
            CHECK(wrong_avx == 0);
            // out the same array as the first input: every input read before the element is written
            std::vector<T> in_place = x[0];
            const auto aliased = std::make_tuple(static_cast<const T*>(I == 0 ? in_place.data() + skew : x[I].data() + skew)...);
            diffuse::detail::lincomb_loop_avx2<T>(in_place.data() + skew, n, coefs, aliased, seq);
            std::size_t wrong_in_place = 0;
            for (std::size_t j = 0; j < n; ++j) wrong_in_place += !same(in_place[skew + j], base[skew + j]);
            CHECK(wrong_in_place == 0);
        }
#endif
        std::size_t written_before = 0;  // nothing written before the start
        for (std::size_t j = 0; j < skew; ++j) written_before += (base[j] != T(7)) + (avx[j] != T(7));
        CHECK(written_before == 0);
    }
}

template <class T>
void check_all_term_counts() {
    std::mt19937_64 rng(sizeof(T) * 131);
    check_terms<T, 1>(rng, std::make_index_sequence<1>{});
    check_terms<T, 2>(rng, std::make_index_sequence<2>{});
    check_terms<T, 3>(rng, std::make_index_sequence<3>{});
    check_terms<T, 5>(rng, std::make_index_sequence<5>{});
}

}  // namespace

TEST_CASE("lincomb's AVX2 and baseline loops give the scalar left fold's bits", "[primitives][lincomb][isa]") {
#if DIFFUSE_HOST_X86_DISPATCH
    if (!diffuse::detail::host_has_avx2()) WARN("this CPU has no AVX2: only the baseline loop is tested");
#endif
    check_all_term_counts<float>();
    check_all_term_counts<double>();
}

TEST_CASE("lincomb through its dispatch equals the scalar left fold on a batch", "[primitives][lincomb][isa]") {
    std::mt19937_64 rng(99);
    const std::size_t B = 3, D = 1037;
    std::vector<float> x(B * D), e(B * D), out(B * D);
    for (auto& v : x) v = random_value<float>(rng);
    for (auto& v : e) v = random_value<float>(rng);
    const std::vector<double> a = {0.5, -0.0, 1e-3}, b = {-2.25, 3.0, -0.0};
    diffuse::lincomb(diffuse::batched(out, B), diffuse::per_sample(a), diffuse::batched(x, B), diffuse::per_sample(b),
                     diffuse::batched(e, B));
    std::size_t wrong = 0;
    for (std::size_t s = 0; s < B; ++s)
        for (std::size_t j = 0; j < D; ++j) {
            const float first = float(a[s]) * x[s * D + j], second = float(b[s]) * e[s * D + j];
            const float sum = first + second;
            wrong += !same(out[s * D + j], sum);
        }
    CHECK(wrong == 0);
}
