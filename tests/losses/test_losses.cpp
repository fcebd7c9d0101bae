#include <catch2/catch.hpp>
#include <rapidcheck/catch.h>

#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "diffuse/adapt/std.hpp"
#include "diffuse/io/npy.hpp"
#include "diffuse/losses/denoising.hpp"
#include "diffuse/losses/dsm.hpp"
#include "diffuse/core/host_rng.hpp"
#include "diffuse/losses/timestep_sampler.hpp"
#include "diffuse/losses/vlb.hpp"
#include "diffuse/losses/weighting.hpp"

using diffuse::batched;
using Catch::Matchers::Contains;

namespace {
std::vector<double> golden(const std::string& name) {
    return diffuse::io::read_npy(std::string(DIFFUSE_GOLDEN_DIR) + "/losses/" + name + ".npy").as<double>();
}
std::vector<double> randn(std::size_t n, std::uint64_t seed, double scale = 1.0) {
    diffuse::host_rng r(seed);
    std::vector<double> v(n);
    for (auto& x : v) x = scale * r.normal();
    return v;
}
}  // namespace

TEST_CASE("denoising_loss: targets, weights and gradient by finite differences", "[losses]") {
    const std::size_t B = 4, D = 5;
    auto x0 = randn(B * D, 1), eps = randn(B * D, 2), y = randn(B * D, 3);
    std::vector<double> alpha{0.9, 0.5, 0.2, 0.99}, sigma(B), w{1.0, 0.5, 2.0, 0.0};
    for (std::size_t b = 0; b < B; ++b) sigma[b] = std::sqrt(1 - alpha[b] * alpha[b]);
    for (auto kind : {diffuse::denoising_target::epsilon, diffuse::denoising_target::sample,
                      diffuse::denoising_target::v_prediction}) {
        std::vector<double> grad(B * D), per(B);
        const double loss = diffuse::denoising_loss(kind, batched(y, B), batched(x0, B), batched(eps, B), alpha,
                                                    sigma, w, batched(grad, B), per);
        // direct formula
        double ref = 0;
        for (std::size_t b = 0; b < B; ++b) {
            double s = 0;
            for (std::size_t j = 0; j < D; ++j) {
                const std::size_t i = b * D + j;
                const double tgt = kind == diffuse::denoising_target::epsilon ? eps[i]
                                   : kind == diffuse::denoising_target::sample
                                       ? x0[i]
                                       : alpha[b] * eps[i] - sigma[b] * x0[i];
                s += (y[i] - tgt) * (y[i] - tgt);
            }
            CHECK(per[b] == Approx(s / D).epsilon(1e-12));
            ref += w[b] * s / D;
        }
        CHECK(loss == Approx(ref / B).epsilon(1e-12));
        // finite differences
        for (std::size_t i = 0; i < B * D; i += 3) {
            auto yp = y, ym = y;
            const double h = 1e-6;
            yp[i] += h;
            ym[i] -= h;
            std::vector<double> g2(B * D);
            const double lp = diffuse::denoising_loss(kind, batched(yp, B), batched(x0, B), batched(eps, B), alpha,
                                                      sigma, w, batched(g2, B));
            const double lm = diffuse::denoising_loss(kind, batched(ym, B), batched(x0, B), batched(eps, B), alpha,
                                                      sigma, w, batched(g2, B));
            CHECK(grad[i] == Approx((lp - lm) / (2 * h)).margin(1e-8));
        }
    }
}

TEST_CASE("denoising_loss works on float tensors", "[losses]") {
    std::vector<float> y{1.f, 2.f, 3.f, 4.f}, x0{0.f, 0.f, 0.f, 0.f}, e{1.f, 1.f, 1.f, 1.f}, g(4);
    const double l = diffuse::denoising_loss(diffuse::denoising_target::epsilon, batched(y, 2), batched(x0, 2),
                                             batched(e, 2), {}, {}, {}, batched(g, 2));
    CHECK(l == Approx((0 + 1 + 4 + 9) / 4.0));
    CHECK(g[3] == Approx(2 * 3 / 4.0));
}

TEST_CASE("denoising_loss rejects bad input", "[losses][errors]") {
    std::vector<double> y(6), x0(6), e(6), g(6), bad(5);
    using diffuse::denoising_target;
    CHECK_THROWS_WITH(diffuse::denoising_loss(denoising_target::epsilon, batched(y, 2), batched(x0, 2),
                                              batched(bad, 1), {}, {}, {}, batched(g, 2)),
                      Contains("noise"));
    std::vector<double> w3{1, 1, 1}, wneg{1, -1};
    CHECK_THROWS_WITH(diffuse::denoising_loss(denoising_target::epsilon, batched(y, 2), batched(x0, 2),
                                              batched(e, 2), {}, {}, w3, batched(g, 2)),
                      Contains("weights has 3 values"));
    CHECK_THROWS_WITH(diffuse::denoising_loss(denoising_target::epsilon, batched(y, 2), batched(x0, 2),
                                              batched(e, 2), {}, {}, wneg, batched(g, 2)),
                      Contains("weights[1] = -1"));
    CHECK_THROWS_WITH(diffuse::denoising_loss(denoising_target::v_prediction, batched(y, 2), batched(x0, 2),
                                              batched(e, 2), {}, {}, {}, batched(g, 2)),
                      Contains("alpha has 0 values"));
    CHECK_THROWS_WITH(diffuse::denoising_loss(denoising_target::epsilon, batched(y, 2), batched(x0, 2),
                                              batched(e, 2), {}, {}, {}, batched(y, 2)),
                      Contains("grad must not overlap"));
    CHECK_THROWS_AS(diffuse::parse_denoising_target("eps"), diffuse::error);
}

TEST_CASE("weightings: min-SNR-gamma, soft-min-SNR, EDM", "[losses]") {
    using diffuse::denoising_target;
    // diffusers' train script: min(snr, γ)/snr for ε, /(snr+1) for v.
    CHECK(diffuse::min_snr_weight(10.0, 5.0, denoising_target::epsilon) == Approx(0.5));
    CHECK(diffuse::min_snr_weight(2.0, 5.0, denoising_target::epsilon) == Approx(1.0));
    CHECK(diffuse::min_snr_weight(10.0, 5.0, denoising_target::v_prediction) == Approx(5.0 / 11.0));
    CHECK(diffuse::min_snr_weight(10.0, 5.0, denoising_target::sample) == Approx(5.0));
    CHECK(diffuse::min_snr_weight(INFINITY, 5.0, denoising_target::epsilon) == 0.0);
    CHECK_THROWS_WITH(diffuse::min_snr_weight(1.0, 0.0, denoising_target::epsilon), Contains("gamma = 0"));
    CHECK_THROWS_WITH(diffuse::min_snr_weight(1.0, -2.0, denoising_target::epsilon), Contains("gamma"));
    CHECK_THROWS_WITH(diffuse::min_snr_weight(-1.0, 5.0, denoising_target::sample), Contains("snr"));
    // EDM λ(σ)·c_out(σ)² = 1 with c_out = σσ_d/√(σ²+σ_d²)
    for (double s : {0.002, 0.1, 1.0, 80.0}) {
        const double cout = s * 0.5 / std::sqrt(s * s + 0.25);
        CHECK(diffuse::edm_weight(s, 0.5) * cout * cout == Approx(1.0).epsilon(1e-12));
        // soft-min-SNR = (σσd)²/(σ²+σd²)²  (k-diffusion's Denoiser weighting)
        CHECK(diffuse::soft_min_snr_weight(s, 0.5) == Approx(std::pow(s * 0.5, 2) / std::pow(s * s + 0.25, 2)));
    }
    CHECK(diffuse::snr_from_alpha_cumprod(0.8) == Approx(4.0));
    CHECK_THROWS_AS(diffuse::edm_weight(0.0), diffuse::error);
    CHECK_THROWS_AS(diffuse::soft_min_snr_weight(1.0, 0.0), diffuse::error);
    const std::vector<double> snr{0.1, 1.0, 100.0};
    const auto w = diffuse::min_snr_weights(snr, 5.0, denoising_target::epsilon);
    CHECK(w[2] == Approx(0.05));
}

TEST_CASE("normal_kl and discretized Gaussian log-likelihood match improved-diffusion", "[losses][golden]") {
    const auto kl = golden("normal_kl");
    const std::size_t n = kl.size() / 5;
    for (std::size_t i = 0; i < n; ++i)
        CHECK(diffuse::normal_kl(kl[i], kl[n + i], kl[2 * n + i], kl[3 * n + i]) ==
              Approx(kl[4 * n + i]).epsilon(1e-12));
    const auto ll = golden("dgll");
    const std::size_t m = ll.size() / 4;
    for (std::size_t i = 0; i < m; ++i)
        CHECK(diffuse::discretized_gaussian_log_likelihood(ll[i], ll[m + i], ll[2 * m + i]) ==
              Approx(ll[3 * m + i]).epsilon(1e-9).margin(1e-12));
}

TEST_CASE("hybrid loss and VLB terms match improved-diffusion, gradient from torch autograd", "[losses][golden]") {
    const auto in = golden("hybrid_inputs");
    const auto outp = golden("hybrid_outputs");
    const auto betas = golden("hybrid_betas");
    const auto sc = golden("hybrid_loss");
    const std::size_t B = 8, D = 6, W = 2 * D + 3 * D + 1;
    REQUIRE(in.size() == B * W);
    std::vector<double> y(B * 2 * D), x0(B * D), xt(B * D), e(B * D);
    std::vector<std::size_t> t(B);
    for (std::size_t b = 0; b < B; ++b) {
        const double* r = &in[b * W];
        for (std::size_t j = 0; j < 2 * D; ++j) y[b * 2 * D + j] = r[j];
        for (std::size_t j = 0; j < D; ++j) {
            x0[b * D + j] = r[2 * D + j];
            xt[b * D + j] = r[3 * D + j];
            e[b * D + j] = r[4 * D + j];
        }
        t[b] = std::size_t(r[5 * D]);
    }
    const auto s = diffuse::vlb_schedule::from_betas(betas);
    std::vector<double> g(B * 2 * D), per(B), vb(B);
    const double loss = diffuse::hybrid_loss(s, batched(y, B), batched(x0, B), batched(xt, B), batched(e, B), t, sc[1],
                                             batched(g, B), per);
    CHECK(loss == Approx(sc[0]).epsilon(1e-10));
    diffuse::vb_terms_bpd(s, batched(y, B), batched(x0, B), batched(xt, B), t, vb);
    const std::size_t OW = 2 + 2 * D;
    for (std::size_t b = 0; b < B; ++b) {
        CHECK(per[b] == Approx(outp[b * OW]).epsilon(1e-10));
        CHECK(vb[b] == Approx(outp[b * OW + 1]).epsilon(1e-10));
        for (std::size_t j = 0; j < 2 * D; ++j)
            CHECK(g[b * 2 * D + j] == Approx(outp[b * OW + 2 + j]).epsilon(1e-7).margin(1e-12));
    }
    // bad input
    std::vector<std::size_t> tbad = t;
    tbad[3] = 20;
    CHECK_THROWS_WITH(diffuse::hybrid_loss(s, batched(y, B), batched(x0, B), batched(xt, B), batched(e, B), tbad,
                                           1.0, batched(g, B)),
                      Contains("t[3] = 20"));
    CHECK_THROWS_WITH(diffuse::hybrid_loss(s, batched(x0, B), batched(x0, B), batched(xt, B), batched(e, B), t, 1.0,
                                           batched(xt, B)),
                      Contains("model_output"));
    const std::vector<double> bad_betas{0.1, 1.5};
    CHECK_THROWS_WITH(diffuse::vlb_schedule::from_betas(bad_betas), Contains("betas[1] = 1.5"));
}

TEST_CASE("prior_bpd is the KL of q(x_T|x0) to N(0,1) in bits", "[losses]") {
    const std::vector<double> betas(10, 0.3);
    const auto s = diffuse::vlb_schedule::from_betas(betas);
    std::vector<double> x0{0.5, -0.5}, out(1);
    diffuse::prior_bpd(s, x0, out);
    const double ab = s.alphas_cumprod.back();
    double ref = 0;
    for (double x : x0) ref += 0.5 * (-1 - std::log(1 - ab) + (1 - ab) + ab * x * x);
    CHECK(out[0] == Approx(ref / 2 / std::log(2.0)));
}

TEST_CASE("DSM losses match score_sde for VP, sub-VP and VE", "[losses][golden]") {
    const auto in = golden("dsm_inputs");
    const auto outp = golden("dsm_outputs");
    const std::size_t B = 5, D = 7, W = 3 * D + 1;
    std::vector<double> x0(B * D), z(B * D), score(B * D), t(B);
    for (std::size_t b = 0; b < B; ++b) {
        for (std::size_t j = 0; j < D; ++j) {
            x0[b * D + j] = in[b * W + j];
            z[b * D + j] = in[b * W + D + j];
            score[b * D + j] = in[b * W + 2 * D + j];
        }
        t[b] = in[b * W + 3 * D];
    }
    // score_sde's defaults: β 0.1 → 20 (VP, sub-VP), σ 0.01 → 50 (VE)
    const diffuse::vp_sde vp;
    const diffuse::subvp_sde subvp;
    const diffuse::ve_sde ve(0.01, 50.0);
    const std::size_t RW = 3 * B + 4 * (1 + B * D);
    for (int k = 0; k < 3; ++k) {
        const double* row = &outp[std::size_t(k) * RW];
        std::vector<double> stddev(B), g2(B), xt(B * D);
        auto perturb = [&](const auto& sde) {
            diffuse::dsm_perturb(sde, batched(x0, B), batched(z, B), t, batched(xt, B), stddev, g2);
            for (std::size_t b = 0; b < B; ++b) {
                const auto m = sde.marginal(t[b]);
                CHECK(m.mean_coef == Approx(row[b]).epsilon(1e-12));
                CHECK(stddev[b] == Approx(row[B + b]).epsilon(1e-12));
                CHECK(g2[b] == Approx(row[2 * B + b]).epsilon(1e-12));
                CHECK(xt[b * D] == Approx(m.mean_coef * x0[b * D] + m.std * z[b * D]).epsilon(1e-12));
            }
        };
        if (k == 0) perturb(vp);
        else if (k == 1) perturb(subvp);
        else perturb(ve);
        int v = 0;
        for (bool reduce_mean : {false, true})
            for (bool lw : {false, true}) {
                const double* ref = row + 3 * B + std::size_t(v++) * (1 + B * D);
                std::vector<double> grad(B * D);
                const double loss = diffuse::dsm_loss(batched(score, B), batched(z, B), stddev, g2,
                                                      diffuse::dsm_options{reduce_mean, lw}, batched(grad, B));
                CHECK(loss == Approx(ref[0]).epsilon(1e-10));
                for (std::size_t i = 0; i < B * D; ++i) CHECK(grad[i] == Approx(ref[1 + i]).epsilon(1e-9).margin(1e-14));
            }
    }
    std::vector<double> grad(B * D), zero_std(B, 0.0);
    CHECK_THROWS_WITH(diffuse::dsm_loss(batched(score, B), batched(z, B), zero_std, {}, {}, batched(grad, B)),
                      Contains("stddev[0] = 0"));
    CHECK_THROWS_WITH(diffuse::dsm_loss(batched(score, B), batched(z, B), t, {}, {false, true}, batched(grad, B)),
                      Contains("g2 has 0 values"));
    std::vector<double> late{0.5, 0.5, 0.5, 0.5, 1.5}, xt(B * D);
    CHECK_THROWS_WITH(diffuse::dsm_perturb(vp, batched(x0, B), batched(z, B), late, batched(xt, B)), Contains("t = 1.5"));
    CHECK_THROWS_WITH(diffuse::dsm_perturb(vp, batched(x0, B), batched(z, B), std::vector<double>(B - 1, 0.5), batched(xt, B)),
                      Contains("t has 4 values"));
}

TEST_CASE("ddpm_sum_loss: score_sde's discrete DDPM loss", "[losses]") {
    std::vector<double> e{1, 2, 3, 4}, z{0, 0, 0, 0}, g(4);
    CHECK(diffuse::ddpm_sum_loss(batched(e, 2), batched(z, 2), false, batched(g, 2)) == Approx((0.5 * 5 + 0.5 * 25) / 2));
    CHECK(g[3] == Approx(4.0 / 2));
    CHECK(diffuse::ddpm_sum_loss(batched(e, 2), batched(z, 2), true, batched(g, 2)) == Approx((2.5 + 12.5) / 2));
}

TEST_CASE("timestep samplers: uniform range, log-normal sigma", "[losses]") {
    diffuse::host_rng rng(7);
    diffuse::uniform_timestep_sampler u(50);
    const auto s = u.sample(10000, rng);
    std::vector<int> hits(50);
    for (auto t : s.timesteps) {
        REQUIRE(t < 50);
        ++hits[t];
    }
    for (int h : hits) CHECK(h > 120);  // expected 200
    CHECK(s.weights[0] == 1.0);
    diffuse::lognormal_sigma_sampler ln;
    const auto sig = ln.sample(20000, rng);
    double m = 0, m2 = 0;
    for (double v : sig) m += std::log(v), m2 += std::log(v) * std::log(v);
    m /= double(sig.size());
    m2 = m2 / double(sig.size()) - m * m;
    CHECK(m == Approx(-1.2).margin(0.03));
    CHECK(std::sqrt(m2) == Approx(1.2).margin(0.03));
    CHECK_THROWS_AS(diffuse::uniform_timestep_sampler(0), diffuse::error);
    CHECK_THROWS_AS((diffuse::lognormal_sigma_sampler{0.0, -1.0}.sample(2, rng)), diffuse::error);
}

TEST_CASE("loss-aware importance sampling is unbiased", "[losses]") {
    const std::size_t T = 20;
    diffuse::loss_aware_sampler las(T, 4, 0.01);
    diffuse::host_rng rng(11);
    // A fixed "loss" per timestep with very unequal scales.
    auto L = [](std::size_t t) { return 0.01 + double(t * t) / 40.0; };
    // Warm-up: uniform sampling, weights 1.
    while (!las.warmed_up()) {
        const auto b = las.sample(16, rng);
        for (double w : b.weights) REQUIRE(w == 1.0);
        std::vector<double> l(b.timesteps.size());
        for (std::size_t i = 0; i < l.size(); ++i) l[i] = L(b.timesteps[i]);
        las.update(b.timesteps, l);
    }
    const auto p = las.probabilities();
    double ps = 0, exact = 0;
    for (std::size_t t = 0; t < T; ++t) ps += p[t], exact += L(t) / double(T);
    CHECK(ps == Approx(1.0).epsilon(1e-12));
    CHECK(p[T - 1] > p[0] * 10);  // importance follows the loss scale
    // exact unbiasedness: Σ_t p_t·w_t·L_t = mean L
    const auto b = las.sample(200000, rng);
    double est = 0, est2 = 0;
    for (std::size_t i = 0; i < b.timesteps.size(); ++i) {
        const std::size_t t = b.timesteps[i];
        CHECK_FALSE(std::abs(b.weights[i] * double(T) * p[t] - 1.0) > 1e-12);
        const double v = b.weights[i] * L(t);
        est += v, est2 += v * v;
    }
    const double n = double(b.timesteps.size());
    est /= n;
    const double se = std::sqrt((est2 / n - est * est) / n);
    CHECK(std::abs(est - exact) < 4 * se + 1e-12);
    // and its variance is lower than uniform sampling's
    double var_u = 0;
    for (std::size_t t = 0; t < T; ++t) var_u += (L(t) - exact) * (L(t) - exact) / double(T);
    CHECK(est2 / n - est * est < var_u);
    const std::vector<std::size_t> ts{25};
    const std::vector<double> ls{1.0}, nan_l{NAN};
    CHECK_THROWS_WITH(las.update(ts, ls), Contains("timesteps[0] = 25"));
    const std::vector<std::size_t> ts0{0};
    CHECK_THROWS_WITH(las.update(ts0, nan_l), Contains("losses[0]"));
    CHECK_THROWS_AS(diffuse::loss_aware_sampler(10, 0), diffuse::error);
}

TEST_CASE("host_rng: property checks", "[losses]") {
    rc::prop("below(n) is in range", [](std::uint64_t seed, std::uint32_t n0) {
        const std::uint64_t n = std::uint64_t(n0) + 1;
        diffuse::host_rng r(seed);
        for (int i = 0; i < 20; ++i) RC_ASSERT(r.below(n) < n);
        const double u = r.uniform();
        RC_ASSERT(u >= 0.0);
        RC_ASSERT(u < 1.0);
    });
}
