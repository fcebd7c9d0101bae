// lincomb_noise (core/lincomb_noise.hpp): bit for bit fill_normal into a buffer followed by lincomb, over
// configurations drawn at random (shapes across the piece, grain and threading thresholds, 0–3 tensor
// terms, number and per-sample coefficients, out aliasing an input, every normal kernel, 1 and 2 threads);
// its argument checks; and the samplers' fused noise terms equal the unfused path they replace.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "diffuse/adapt/std.hpp"
#include "diffuse/core/error.hpp"
#include "diffuse/core/fill_normal.hpp"
#include "diffuse/core/lincomb_noise.hpp"
#include "diffuse/core/parallel.hpp"
#include "diffuse/samplers/analytic.hpp"
#include "diffuse/samplers/ddim.hpp"
#include "diffuse/samplers/ddpm.hpp"
#include "diffuse/samplers/euler.hpp"
#include "diffuse/schedules/beta.hpp"

#include "../samplers/stepper_support.hpp"

using namespace diffuse;

namespace {

struct state_guard {  // restores the thread count and the normal kernel
    unsigned threads = num_threads();
    normal_kernel kernel = active_normal_kernel();
    ~state_guard() {
        set_num_threads(threads);
        set_normal_kernel(kernel);
    }
};

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

// One drawn configuration of the primitive, run fused and unfused.
template <class T>
void check_one(std::mt19937_64& rng, std::size_t terms, bool per_sample_coefs, bool alias, unsigned threads,
               normal_kernel kernel) {
    set_num_threads(threads);
    set_normal_kernel(kernel);
    const std::size_t B = 1 + rng() % 4;
    // Elements per sample: small, across the 1024-value noise piece, or across the grain (2^14) and the
    // compute-bound threading threshold (2^15 in all).
    const std::size_t sizes[] = {1 + rng() % 40, 1000 + rng() % 3000, 15000 + rng() % 30000};
    const std::size_t D = sizes[rng() % 3];
    const std::uint64_t seed = rng(), draw = rng() % 5000, first = (rng() % 2) ? rng() % 100 : (rng() >> 5);
    std::vector<std::vector<T>> x(3, std::vector<T>(B * D));
    for (auto& v : x) fill_normal(batched(v, B), rng(), 0);
    std::vector<std::vector<double>> c(4, std::vector<double>(B));
    std::normal_distribution<double> coef;
    for (auto& v : c) {
        const double shared = coef(rng);
        for (auto& e : v) e = per_sample_coefs ? coef(rng) : shared;
    }
    auto fused = alias ? x[0] : std::vector<T>(B * D, T(7));
    auto unfused = fused;
    std::vector<T> z(B * D);
    fill_normal(batched(z, B), seed, draw, first);
    const normal_noise noise{seed, draw, first};
    auto& in0 = alias ? fused : x[0];
    auto& in0u = alias ? unfused : x[0];
    const auto o = batched(fused, B), u = batched(unfused, B);
    const auto zs = batched(z, B);
    const auto a0 = batched(in0, B), a0u = batched(in0u, B), a1 = batched(x[1], B), a2 = batched(x[2], B);
    const auto k = [&](std::size_t i) { return per_sample(c[i]); };
    INFO("B " << B << " D " << D << " terms " << terms << " per-sample " << per_sample_coefs << " alias " << alias
              << " threads " << threads << " kernel " << int(kernel));
    if (per_sample_coefs) {
        switch (terms) {
            case 0: lincomb_noise(o, k(3), noise), lincomb(u, k(3), zs); break;
            case 1: lincomb_noise(o, k(0), a0, k(3), noise), lincomb(u, k(0), a0u, k(3), zs); break;
            case 2: lincomb_noise(o, k(0), a0, k(1), a1, k(3), noise), lincomb(u, k(0), a0u, k(1), a1, k(3), zs); break;
            default:
                lincomb_noise(o, k(0), a0, k(1), a1, k(2), a2, k(3), noise);
                lincomb(u, k(0), a0u, k(1), a1, k(2), a2, k(3), zs);
        }
    } else {
        const double s0 = c[0][0], s1 = c[1][0], s3 = c[3][0];
        switch (terms) {
            case 0: lincomb_noise(o, s3, noise), lincomb(u, s3, zs); break;
            case 1: lincomb_noise(o, s0, a0, s3, noise), lincomb(u, s0, a0u, s3, zs); break;
            default: lincomb_noise(o, s0, a0, s1, a1, s3, noise), lincomb(u, s0, a0u, s1, a1, s3, zs);
        }
    }
    CHECK(same_bits(fused, unfused));
}

std::vector<normal_kernel> kernels() {
    std::vector<normal_kernel> ks;
    for (normal_kernel k : {normal_kernel::portable, normal_kernel::sse2, normal_kernel::avx2, normal_kernel::avx512})
        if (normal_kernel_supported(k)) ks.push_back(k);
    return ks;
}

}  // namespace

TEST_CASE("lincomb_noise equals fill_normal followed by lincomb, bit for bit", "[noise_fusion][lincomb_noise]") {
    state_guard guard;
    std::mt19937_64 rng(20261202);
    const auto ks = kernels();
    for (int trial = 0; trial < 120; ++trial) {
        // Every option is switched on in some trial: the loop index enumerates them, the rest is drawn.
        const std::size_t terms = std::size_t(trial % 4);
        const bool per_sample_coefs = (trial / 4) % 2 == 0;
        const bool alias = terms > 0 && (trial / 8) % 2 == 0;
        const unsigned threads = 1 + unsigned((trial / 16) % 2);
        const normal_kernel kernel = ks[std::size_t(trial) % ks.size()];
        if (trial % 2 == 0) check_one<float>(rng, terms, per_sample_coefs, alias, threads, kernel);
        else check_one<double>(rng, terms, per_sample_coefs, alias, threads, kernel);
    }
}

TEST_CASE("lincomb_noise checks its arguments", "[noise_fusion][lincomb_noise][errors]") {
    std::vector<float> out(12), x(12), y(10);
    const auto o = batched(out, 3);
    CHECK_THROWS_WITH(lincomb_noise(o, 1.0, batched(y, 2), 1.0, normal_noise{}), Catch::Contains("input 0 has shape"));
    const std::vector<double> two{1.0, 2.0};
    CHECK_THROWS_WITH(lincomb_noise(o, 1.0, batched(x, 3), per_sample(two), normal_noise{}),
                      Catch::Contains("per-sample coefficient 1 has 2 values but the batch has 3"));
    CHECK_THROWS_WITH(lincomb_noise(o, 1.0, batched(x, 3), 1.0, normal_noise{1, normal_draw_limit, 0}),
                      Catch::Contains("draw"));
    CHECK_THROWS_WITH(lincomb_noise(o, 1.0, batched(x, 3), 1.0, normal_noise{1, 0, normal_sample_limit - 2}),
                      Catch::Contains("first_sample + batch"));
    CHECK_THROWS_WITH(lincomb_noise(o, 1.0, batched(x, 3), 1.0, normal_noise{1, 0, ~std::uint64_t{0}}),
                      Catch::Contains("first_sample + batch"));
    CHECK_NOTHROW(lincomb_noise(o, 1.0, batched(x, 3), 1.0, normal_noise{1, 0, normal_sample_limit - 3}));
    std::vector<float> none;
    const tensor_view<float> empty{none.data(), 2, 0};
    CHECK_NOTHROW(lincomb_noise(empty, 1.0, normal_noise{1, 0, normal_sample_limit - 2}));
    CHECK_THROWS_WITH(lincomb_noise(empty, 1.0, normal_noise{1, normal_draw_limit, 0}), Catch::Contains("draw"));
}

namespace {

// counter_noise behind a type the samplers do not recognise: they then draw into their buffer and combine
// it with lincomb, the unfused path.
struct unfused_counter_noise {
    counter_noise inner;
    template <class V>
    void operator()(const V& out, std::uint64_t draw) const {
        inner(out, draw);
    }
};

using stepper_check::mixture;

// Runs `sampler(x, noise)` with counter_noise (fused) and unfused_counter_noise from the same start.
template <class T, class Run>
void check_sampler(const char* name, std::size_t B, std::size_t D, Run run) {
    INFO(name << " B " << B << " D " << D << " threads " << num_threads());
    std::vector<T> a(B * D);
    fill_normal(batched(a, B), 99, 0);
    auto b = a;
    run(batched(a, B), counter_noise{4321, 3});
    run(batched(b, B), unfused_counter_noise{counter_noise{4321, 3}});
    CHECK(same_bits(a, b));
}

}  // namespace

TEMPLATE_TEST_CASE("the samplers' fused noise terms give the unfused bits", "[noise_fusion][samplers]", float, double) {
    using T = TestType;
    state_guard guard;
    const auto ac = stepper_check::linear_alphas_cumprod();
    const std::vector<std::int64_t> ts{999, 799, 599, 399, 199, 0};
    const time_grid sigmas({10.0, 4.0, 1.5, 0.6, 0.2, 0.05, 0.0});
    for (unsigned threads : {1u, 2u}) {
        set_num_threads(threads);
        for (auto [B, D] : {std::pair<std::size_t, std::size_t>{3, 37}, {2, 40000}}) {
            const auto sigma_model = [D = D] { return analytic_model(mixture(D), prediction::sample, sigma_time{}); };
            const auto eps_model = [&ac, D = D] {
                return analytic_model(mixture(D), prediction::epsilon, discrete_time(ac));
            };
            check_sampler<T>("sample_euler (churn)", B, D, [&](auto x, auto noise) {
                auto m = sigma_model();
                churn_options o;
                o.s_churn = 2.0;
                o.s_tmin = 0.5;  // churn on some steps only
                sample_euler(m, x, sigmas, o, noise);
            });
            check_sampler<T>("sample_heun (churn, noise every step)", B, D, [&](auto x, auto noise) {
                auto m = sigma_model();
                churn_options o;
                o.s_churn = 1.0;
                o.s_tmax = 2.0;
                o.noise_every_step = true;
                sample_heun(m, x, sigmas, o, noise);
            });
            check_sampler<T>("sample_euler_ancestral", B, D, [&](auto x, auto noise) {
                auto m = sigma_model();
                ancestral_options o;
                o.eta = 0.7;
                o.s_noise = 1.1;
                sample_euler_ancestral(m, x, sigmas, o, noise);
            });
            check_sampler<T>("sample_dpm_2_ancestral", B, D, [&](auto x, auto noise) {
                auto m = sigma_model();
                sample_dpm_2_ancestral(m, x, sigmas, {}, noise);
            });
            check_sampler<T>("sample_ddpm", B, D, [&](auto x, auto noise) {
                auto m = eps_model();
                ddpm_options o;
                o.clip_sample = false;
                sample_ddpm(m, x, ac, discrete_grid(ts), o, noise, no_observer{}, 3);
            });
            check_sampler<T>("sample_ddpm (clipped)", B, D, [&](auto x, auto noise) {
                auto m = eps_model();
                sample_ddpm(m, x, ac, discrete_grid(ts), {}, noise, no_observer{}, 3);
            });
            check_sampler<T>("sample_ddim (eta = 0.8)", B, D, [&](auto x, auto noise) {
                auto m = eps_model();
                ddim_options o;
                o.eta = 0.8;
                sample_ddim(m, x, ac, discrete_grid(ts), o, noise, no_observer{}, 3);
            });
        }
    }
}
