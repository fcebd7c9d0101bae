// Analytic Gaussian / Gaussian-mixture denoisers against independent closed forms and quadrature.
#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <vector>

#include "diffuse/adapt/std.hpp"
#include "diffuse/samplers/analytic.hpp"
#include "diffuse/schedules/beta.hpp"
#include "diffuse/schedules/continuous.hpp"

using namespace diffuse;

namespace {
double normal_pdf(double x, double m, double v) { return std::exp(-0.5 * (x - m) * (x - m) / v) / std::sqrt(2 * M_PI * v); }

// E[x0 | x] for 1-D mixture data by brute-force quadrature of x0·p0(x0)·N(x; α x0, σ²) over x0.
double quadrature_posterior_mean(const std::vector<double>& w, const std::vector<double>& mu, const std::vector<double>& var,
                                 double x, double a, double s) {
    double num = 0, den = 0;
    const double lo = -12, hi = 12;
    const int n = 200000;
    const double h = (hi - lo) / n;
    for (int i = 0; i <= n; ++i) {
        const double x0 = lo + h * i;
        double p0 = 0;
        for (std::size_t k = 0; k < w.size(); ++k) p0 += w[k] * normal_pdf(x0, mu[k], var[k]);
        const double lik = normal_pdf(x, a * x0, s * s);
        const double c = (i == 0 || i == n) ? 0.5 : 1.0;
        num += c * x0 * p0 * lik;
        den += c * p0 * lik;
    }
    return num / den;
}
}  // namespace

TEST_CASE("gaussian data: posterior mean is the Gaussian conditioning formula", "[samplers][discrete][analytic]") {
    const auto g = gaussian_mixture::gaussian({0.5, -1.0, 2.0}, {0.25, 1.0, 4.0});
    std::vector<double> x = {0.3, 0.7, -1.1, 2.0, -0.4, 0.9};
    std::vector<double> x0(6), scratch;
    const std::vector<double> a = {0.8, 1.0}, s = {0.6, 3.0};
    g.denoise<double>(batched(x, 2), a, s, batched(x0, 2), scratch);
    const double mu[3] = {0.5, -1.0, 2.0}, v[3] = {0.25, 1.0, 4.0};
    for (int b = 0; b < 2; ++b)
        for (int d = 0; d < 3; ++d) {
            // E[x0|x] = μ + Cov(x0,x)/Var(x)·(x − αμ) with Cov = α v, Var = α² v + σ²
            const double expect = mu[d] + a[b] * v[d] / (a[b] * a[b] * v[d] + s[b] * s[b]) * (x[b * 3 + d] - a[b] * mu[d]);
            CHECK(x0[b * 3 + d] == Approx(expect).epsilon(1e-14));
        }
    CHECK(g.data_mean() == std::vector<double>{0.5, -1.0, 2.0});
    const auto c = g.data_covariance();
    CHECK(c[0] == Approx(0.25));
    CHECK(c[4] == Approx(1.0));
    CHECK(c[1] == Approx(0.0).margin(1e-15));
}

TEST_CASE("mixture: responsibilities and posterior mean match quadrature", "[samplers][discrete][analytic]") {
    const std::vector<double> w = {0.2, 0.5, 0.3}, mu = {-2.0, 0.5, 3.0}, var = {0.1, 0.3, 0.05};
    const gaussian_mixture m(w, mu, var);
    for (const auto [x, a, s] : {std::array<double, 3>{0.1, 0.9, 0.4}, {2.0, 0.5, 0.8}, {-1.0, 1.0, 0.05},
                                 {4.0, 0.2, 1.5}}) {
        // responsibilities by hand: w_k N(x; α μ_k, α² v_k + σ²), normalised
        double p[3], tot = 0;
        for (int k = 0; k < 3; ++k) tot += p[k] = w[k] * normal_pdf(x, a * mu[k], a * a * var[k] + s * s);
        std::vector<double> r(3);
        const std::vector<double> xs = {x};
        m.responsibilities<double>(xs, {a, s}, r);
        for (int k = 0; k < 3; ++k) CHECK(r[k] == Approx(p[k] / tot).epsilon(1e-12));
        CHECK(m.log_density<double>(xs, {a, s}) == Approx(std::log(tot)).epsilon(1e-12));

        std::vector<double> out(1), scratch;
        m.denoise<double>(batched(xs, 1), std::vector<double>{a}, std::vector<double>{s}, batched(out, 1), scratch);
        CHECK(out[0] == Approx(quadrature_posterior_mean(w, mu, var, x, a, s)).epsilon(1e-7));
    }
    CHECK(m.data_mean()[0] == Approx(0.2 * -2.0 + 0.5 * 0.5 + 0.3 * 3.0));
}

TEST_CASE("analytic model: every prediction kind agrees; score = -eps/sigma = grad log p", "[samplers][discrete][analytic]") {
    const gaussian_mixture m({0.3, 0.7}, {-1.0, 0.5, 1.5, -0.5}, {0.2, 0.4});
    const auto sched = discrete_schedule::from_config("linear", 1000);
    const std::vector<double> x = {0.4, -0.3, 1.2, 0.8};
    // A VP state at timestep 400 and one at 37: α = √ᾱ, σ = √(1 − ᾱ).
    const std::vector<double> tn = {400, 37};
    std::vector<double> al(2), si(2);
    for (int b = 0; b < 2; ++b) {
        const double ac = sched.alphas_cumprod[std::size_t(tn[b])];
        al[b] = std::sqrt(ac);
        si[b] = std::sqrt(1 - ac);
    }
    std::vector<std::vector<double>> results;
    for (auto p : {prediction::epsilon, prediction::sample, prediction::v, prediction::score}) {
        auto mdl = analytic_model(m, p, discrete_time(sched.alphas_cumprod));
        std::vector<double> eps(4);
        mdl.predict(batched(x, 2), al, si, prediction::epsilon, batched(eps, 2), tn);
        results.push_back(eps);
        // the clock gives the VP (α, σ) at integer timesteps
        const auto sc = mdl.net().clock()(tn[0]);
        CHECK(sc.alpha == Approx(al[0]).epsilon(1e-14));
        CHECK(sc.sigma == Approx(si[0]).epsilon(1e-14));
    }
    for (std::size_t i = 1; i < results.size(); ++i)
        for (int j = 0; j < 4; ++j) CHECK(results[i][j] == Approx(results[0][j]).epsilon(1e-11));

    auto mdl = analytic_model(m, prediction::epsilon, discrete_time(sched.alphas_cumprod));
    std::vector<double> score(4);
    mdl.predict(batched(x, 2), al, si, prediction::score, batched(score, 2), tn);
    for (int b = 0; b < 2; ++b) {
        for (int d = 0; d < 2; ++d) {
            CHECK(score[b * 2 + d] == Approx(-results[0][b * 2 + d] / si[b]).epsilon(1e-12));
            // central finite difference of log p_t
            std::vector<double> xp(x.begin() + b * 2, x.begin() + b * 2 + 2), xm = xp;
            const double h = 1e-5;
            xp[d] += h;
            xm[d] -= h;
            const double fd = (m.log_density<double>(xp, {al[b], si[b]}) - m.log_density<double>(xm, {al[b], si[b]})) / (2 * h);
            CHECK(score[b * 2 + d] == Approx(fd).epsilon(1e-6));
        }
    }
}

TEST_CASE("analytic model: VE, SDE clocks, float tensors and tensor_view", "[samplers][discrete][analytic]") {
    const gaussian_mixture m({1.0, 2.0}, {-1.0, 1.0}, {0.1, 0.1});
    // VE: σ-space model, x = x0 + σ ε
    auto ve = analytic_model(m, prediction::sample, sigma_time{});
    std::vector<float> xf = {0.3f, -2.0f, 5.0f};
    std::vector<float> outf(3);
    const std::vector<double> one(3, 1.0), sig = {0.5, 1.0, 10.0};
    ve.predict(batched(xf, 3), one, sig, prediction::sample, tensor_view<float>{outf.data(), 3, 1});
    std::vector<double> xd(xf.begin(), xf.end()), outd(3), scratch;
    m.denoise<double>(batched(xd, 3), one, sig, batched(outd, 3), scratch);
    for (int i = 0; i < 3; ++i) CHECK(outf[i] == Approx(outd[i]).epsilon(1e-6));

    // VP SDE: the clock is the marginal
    auto vp = analytic_model(m, prediction::score, continuous_time<vp_sde>{vp_sde{}});
    const auto sc = vp.net().clock()(0.5);
    const auto mc = vp_sde{}.marginal(0.5);
    CHECK(sc.alpha == mc.mean_coef);
    CHECK(sc.sigma == mc.std);
    std::vector<double> x0(3);
    const std::vector<double> a(3, mc.mean_coef), s(3, mc.std);
    vp.predict(batched(xd, 3), a, s, prediction::sample, batched(x0, 3));
    m.denoise<double>(batched(xd, 3), a, s, batched(outd, 3), scratch);
    for (int i = 0; i < 3; ++i) CHECK(x0[i] == Approx(outd[i]).epsilon(1e-9));
}

TEST_CASE("analytic denoiser: conditional weights, learned variance, errors", "[samplers][discrete][analytic]") {
    const gaussian_mixture m({0.5, 0.5}, {-1.0, 1.0}, {0.01, 0.01});
    analytic_denoiser<sigma_clock> net(m, prediction::sample, {});
    net.conditional_weights = std::vector<double>{0.0, 1.0};  // conditional rows: only the +1 component
    std::vector<double> x = {0.0, 0.0}, out(2);
    const std::vector<double> t = {1.0, 1.0};
    const std::vector<std::uint8_t> uncond = {1, 0};
    net(tensor_view<const double>{x.data(), 2, 1}, model_cond{t, uncond}, tensor_view<double>{out.data(), 2, 1});
    CHECK(out[0] == Approx(0.0).margin(1e-12));  // symmetric mixture at x = 0
    CHECK(out[1] == Approx(1.0 / (1.0 + 0.01)).epsilon(1e-12));  // μ + v/(v+σ²)(x − μ), μ = 1
    CHECK(net.calls == 1);

    std::vector<double> out2(4);
    net.learned_variance = 0.25;
    net(tensor_view<const double>{x.data(), 2, 1}, model_cond{t}, tensor_view<double>{out2.data(), 2, 2});
    CHECK(out2[1] == 0.25);
    CHECK(out2[3] == 0.25);
    CHECK(out2[2] == Approx(1.0 / 1.01).epsilon(1e-12));  // no mask: conditional rows

    CHECK_THROWS_AS(gaussian_mixture({1.0, -1.0}, {0.0, 1.0}, {1.0, 1.0}), diffuse::error);
    CHECK_THROWS_AS(gaussian_mixture({1.0}, {0.0, 1.0}, {1.0, 1.0, 1.0}), diffuse::error);
    std::vector<double> bad(3);
    CHECK_THROWS_AS(net(tensor_view<const double>{x.data(), 2, 1}, model_cond{t}, tensor_view<double>{bad.data(), 1, 3}),
                    diffuse::error);
    // a point mass cannot be denoised at σ = 0
    const gaussian_mixture pm({1.0}, {0.0}, {0.0});
    std::vector<double> sc;
    CHECK_THROWS_AS(pm.denoise<double>(tensor_view<const double>{x.data(), 1, 1}, std::vector<double>{1.0},
                                       std::vector<double>{0.0}, tensor_view<double>{out.data(), 1, 1}, sc),
                    diffuse::error);
}
