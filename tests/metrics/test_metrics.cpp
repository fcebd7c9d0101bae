#include <catch2/catch.hpp>

#include <Eigen/Dense>

#include <cmath>
#include <numbers>
#include <string>
#include <vector>

#include "diffuse/adapt/std.hpp"
#include "diffuse/io/npy.hpp"
#include "diffuse/schedules/continuous.hpp"
#include "diffuse/metrics/frechet.hpp"
#include "diffuse/metrics/inception_score.hpp"
#include "diffuse/metrics/likelihood.hpp"
#include "diffuse/metrics/sample_distance.hpp"

using diffuse::batched;
using Catch::Matchers::Contains;

namespace {
struct table {
    std::vector<double> v;
    std::size_t rows, cols;
};
table golden(const std::string& name) {
    const auto a = diffuse::io::read_npy(std::string(DIFFUSE_GOLDEN_DIR) + "/metrics/" + name + ".npy");
    return {a.as<double>(), a.shape.empty() ? 1 : a.shape[0], a.shape.size() > 1 ? a.shape[1] : 1};
}
}  // namespace

TEST_CASE("frechet_distance matches scipy.linalg.sqrtm", "[metrics][golden]") {
    auto f1 = golden("frechet_f1"), f2 = golden("frechet_f2");
    const double ref = golden("frechet_value").v[0];
    const double fd = diffuse::frechet_distance(batched(f1.v, f1.rows), batched(f2.v, f2.rows));
    CHECK(fd == Approx(ref).epsilon(1e-9));
    // identical sets: 0; float features work too
    CHECK(std::abs(diffuse::frechet_distance(batched(f1.v, f1.rows), batched(f1.v, f1.rows))) < 1e-9);
    std::vector<float> f1f(f1.v.begin(), f1.v.end()), f2f(f2.v.begin(), f2.v.end());
    CHECK(diffuse::frechet_distance(batched(f1f, f1.rows), batched(f2f, f2.rows)) == Approx(ref).epsilon(1e-5));
    // errors
    std::vector<double> one(5);
    CHECK_THROWS_WITH(diffuse::feature_statistics(batched(one, 1)), Contains("number of samples = 1"));
    std::vector<double> other(40 * 4);
    CHECK_THROWS_WITH(diffuse::frechet_distance(batched(f1.v, f1.rows), batched(other, 40)),
                      Contains("dimensions differ"));
    auto s = diffuse::feature_statistics(batched(f1.v, f1.rows));
    s.cov[1] += 1.0;
    CHECK_THROWS_WITH(diffuse::frechet_distance(s, s), Contains("symmetric"));
    auto nanf = f1.v;
    nanf[7] = NAN;
    CHECK_THROWS_WITH(diffuse::feature_statistics(batched(nanf, f1.rows)), Contains("not finite"));
}

TEST_CASE("inception_score matches the reference formula", "[metrics][golden]") {
    auto p = golden("is_probs");
    const auto ref = golden("is_value").v;
    const auto r = diffuse::inception_score(batched(p.v, p.rows), 3);
    CHECK(r.mean == Approx(ref[0]).epsilon(1e-12));
    CHECK(r.std == Approx(ref[1]).epsilon(1e-9));
    // one-hot, uniformly spread classes: IS = number of classes
    std::vector<double> onehot(4 * 4, 0.0);
    for (int i = 0; i < 4; ++i) onehot[std::size_t(i * 4 + i)] = 1.0;
    CHECK(diffuse::inception_score(batched(onehot, 4), 1).mean == Approx(4.0));
    auto bad = p.v;
    bad[0] += 0.1;
    CHECK_THROWS_WITH(diffuse::inception_score(batched(bad, p.rows), 3), Contains("sum to"));
    CHECK_THROWS_WITH(diffuse::inception_score(batched(p.v, p.rows), 31), Contains("splits = 31"));
}

TEST_CASE("sliced Wasserstein and MMD match numpy/scipy", "[metrics][golden]") {
    auto x = golden("sw_x"), y = golden("sw_y"), y2 = golden("sw_y2"), dirs = golden("sw_dirs");
    const auto ref = golden("sw_value").v;
    CHECK(diffuse::sliced_wasserstein(batched(x.v, x.rows), batched(y.v, y.rows), dirs.v, 1.0) ==
          Approx(ref[0]).epsilon(1e-12));
    CHECK(diffuse::sliced_wasserstein(batched(x.v, x.rows), batched(y2.v, y2.rows), dirs.v, 2.0) ==
          Approx(ref[1]).epsilon(1e-12));
    CHECK(diffuse::sliced_wasserstein(batched(x.v, x.rows), batched(x.v, x.rows), 16, 1) == Approx(0.0).margin(1e-12));
    // a pure translation by c along a unit vector u: W_2 on direction θ is |c·⟨u,θ⟩|
    std::vector<double> xs = x.v;
    for (std::size_t i = 0; i < x.rows; ++i) xs[i * 3] += 2.0;
    const std::vector<double> e1{1, 0, 0};
    CHECK(diffuse::sliced_wasserstein(batched(x.v, x.rows), batched(xs, x.rows), e1) == Approx(2.0));
    const auto mref = golden("mmd_value").v;
    const std::vector<double> bw{0.5, 2.0};
    CHECK(diffuse::mmd2(batched(x.v, x.rows), batched(y.v, y.rows), bw, true) == Approx(mref[0]).epsilon(1e-10));
    CHECK(diffuse::mmd2(batched(x.v, x.rows), batched(y.v, y.rows), bw, false) == Approx(mref[1]).epsilon(1e-10));
    // errors
    std::vector<double> two_d(10);
    CHECK_THROWS_WITH(diffuse::sliced_wasserstein(batched(x.v, x.rows), batched(two_d, 5), 4, 0), Contains("dimension"));
    const std::vector<double> zero_dir{0, 0, 0};
    CHECK_THROWS_WITH(diffuse::sliced_wasserstein(batched(x.v, x.rows), batched(y.v, y.rows), zero_dir),
                      Contains("direction 0 is zero"));
    const std::vector<double> bad_bw{1.0, -1.0};
    CHECK_THROWS_WITH(diffuse::mmd2(batched(x.v, x.rows), batched(y.v, y.rows), bad_bw), Contains("bandwidths[1] = -1"));
    CHECK_THROWS_AS(diffuse::sliced_wasserstein(batched(x.v, x.rows), batched(y.v, y.rows), dirs.v, 0.5), diffuse::error);
}

TEST_CASE("probability-flow ODE likelihood matches the exact Gaussian log-likelihood", "[metrics][likelihood]") {
    // data N(μ, Σ) in 3-D with a full covariance, VP SDE (β 0.1 → 20): every marginal is Gaussian and
    // the score is exact, so the only errors are the ODE solver's and the Hutchinson estimator's.
    const int D = 3;
    Eigen::Matrix3d R;
    R << 1.0, 0.4, -0.3, 0.2, 0.8, 0.5, -0.1, 0.3, 1.1;
    const Eigen::Matrix3d Sigma = R * R.transpose() + 0.1 * Eigen::Matrix3d::Identity();
    const Eigen::Vector3d mu(0.5, -0.3, 0.2);
    const diffuse::vp_sde sde;
    auto cov_at = [&](double t) {
        const auto m = sde.marginal(t);
        return Eigen::Matrix3d(m.mean_coef * m.mean_coef * Sigma + m.std * m.std * Eigen::Matrix3d::Identity());
    };
    auto logpdf = [&](const Eigen::Vector3d& x, const Eigen::Vector3d& m, const Eigen::Matrix3d& C) {
        const Eigen::LLT<Eigen::Matrix3d> llt(C);
        const Eigen::Vector3d d = x - m;
        const double logdet = 2.0 * llt.matrixL().toDenseMatrix().diagonal().array().log().sum();
        return -0.5 * (D * std::log(2 * std::numbers::pi) + logdet + d.dot(llt.solve(d)));
    };
    auto drift = [&](const std::vector<double>& x, double t, std::vector<double>& out) {
        const auto m = sde.marginal(t);
        const Eigen::Matrix3d P = cov_at(t).inverse();
        for (std::size_t b = 0; b < x.size() / D; ++b) {
            const Eigen::Vector3d xv(x[b * D], x[b * D + 1], x[b * D + 2]);
            const Eigen::Vector3d score = -P * (xv - m.mean_coef * mu);
            const Eigen::Vector3d f = -0.5 * sde.beta(t) * (xv + score);  // f̃ = f − ½g²∇log p, f = −½β, g² = β
            for (int j = 0; j < D; ++j) out[b * D + std::size_t(j)] = f(j);
        }
    };
    const double T = 1.0;
    const auto mT = sde.marginal(T);
    auto prior = [&](std::span<const double> x) {
        return logpdf(Eigen::Vector3d(x[0], x[1], x[2]), mT.mean_coef * mu, cov_at(T));
    };
    const Eigen::Vector3d x0(0.9, -1.2, 0.4);
    const std::size_t K = 64;  // one probe per copy
    std::vector<double> xs(K * D);
    for (std::size_t k = 0; k < K; ++k)
        for (int j = 0; j < D; ++j) xs[k * D + std::size_t(j)] = x0(j);
    diffuse::ode_likelihood_options opt;
    const auto m0 = sde.marginal(opt.t_start);
    const double exact = logpdf(x0, m0.mean_coef * mu, cov_at(opt.t_start));
    for (auto probe : {diffuse::hutchinson_probe::rademacher, diffuse::hutchinson_probe::gaussian}) {
        opt.probe = probe;
        opt.seed = 17;
        const auto r = diffuse::ode_log_likelihood(drift, prior, xs, K, opt);
        double mean = 0, m2 = 0;
        for (double v : r.log_likelihood) mean += v / double(K);
        for (double v : r.log_likelihood) m2 += (v - mean) * (v - mean) / double(K - 1);
        const double se = std::sqrt(m2 / double(K));
        INFO("estimate " << mean << " ± " << se << ", exact " << exact);
        CHECK(se > 1e-4);  // the full covariance makes the estimator genuinely stochastic
        CHECK(std::abs(mean - exact) < 3.0 * se + 1e-3);
        CHECK(r.bits_per_dim[0] == Approx(-r.log_likelihood[0] / (D * std::log(2.0))));
    }
    opt.data_scale = 128.0;
    const auto r7 = diffuse::ode_log_likelihood(drift, prior, std::span<const double>(xs.data(), D), 1, opt);
    CHECK(r7.bits_per_dim[0] == Approx(-r7.log_likelihood[0] / (D * std::log(2.0)) + 7.0));
    opt.fd_step = 0.0;
    CHECK_THROWS_WITH(diffuse::ode_log_likelihood(drift, prior, xs, K, opt), Contains("fd_step = 0"));
    opt.fd_step = 1e-4;
    CHECK_THROWS_WITH(diffuse::ode_log_likelihood(drift, prior, xs, 5, opt), Contains("batch = 5"));
}

TEST_CASE("discrete VLB in bits/dim: terms add up and a better model scores lower", "[metrics][likelihood]") {
    std::vector<double> betas(50);
    for (std::size_t i = 0; i < betas.size(); ++i) betas[i] = 1e-3 + (0.3 - 1e-3) * double(i) / 49.0;
    const auto s = diffuse::vlb_schedule::from_betas(betas);
    // data: N(0, 0.25) (1-D, in [-1, 1] mostly); the optimal ε predictor for Gaussian data
    const double v0 = 0.25;
    auto optimal = [&](diffuse::tensor_view<const double> x, std::span<const double> t, diffuse::tensor_view<double> out) {
        for (std::size_t b = 0; b < x.batch; ++b) {
            const double ab = s.alphas_cumprod[std::size_t(t[b])];
            out[b] = std::sqrt(1 - ab) * x[b] / (ab * v0 + 1 - ab);  // E[ε | x_t]
        }
    };
    auto zero = [&](diffuse::tensor_view<const double> x, std::span<const double>, diffuse::tensor_view<double> out) {
        for (std::size_t b = 0; b < x.batch; ++b) out[b] = 0.0;
    };
    diffuse::host_rng rng(5);
    std::vector<double> x0(400);
    for (auto& v : x0) v = std::clamp(0.5 * rng.normal(), -1.0, 1.0);
    const auto fixed = s.posterior_log_variance_clipped;
    const auto good = diffuse::vlb_bits_per_dim(optimal, s, x0, 400, 1, fixed);
    const auto bad = diffuse::vlb_bits_per_dim(zero, s, x0, 400, 1, fixed);
    double g = 0, b = 0;
    for (std::size_t i = 0; i < 400; ++i) {
        double sum = good.prior_bpd[i];
        for (std::size_t t = 0; t < 50; ++t) sum += good.terms_bpd[t * 400 + i];
        CHECK(sum == Approx(good.total_bpd[i]).epsilon(1e-12));
        g += good.total_bpd[i] / 400, b += bad.total_bpd[i] / 400;
    }
    CHECK(g < b);
    // the VLB bounds the true discrete NLL of the data from above (up to Monte-Carlo noise)
    double exact = 0;
    auto Phi = [](double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); };
    for (double x : x0) exact += -std::log2(Phi((x + 1 / 255.0) / 0.5) - Phi((x - 1 / 255.0) / 0.5)) / 400;
    CHECK(g > exact - 0.05);
    CHECK(exact == Approx(8.04).margin(0.2));
    std::vector<double> wrong(49);
    CHECK_THROWS_WITH(diffuse::vlb_bits_per_dim(optimal, s, x0, 400, 1, wrong), Contains("fixed_log_variance has 49"));
}
