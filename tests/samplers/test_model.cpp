#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "diffuse/adapt/std.hpp"
#include "diffuse/samplers/model.hpp"
#include "diffuse/schedules/continuous.hpp"

using diffuse::prediction;

namespace {
// Data x₀ ~ N(mu, s²) per element. A network that knows its own (α, σ) at its time t and returns the exact
// posterior prediction of the requested kind: the ideal network for that parameterisation.
constexpr double mu = 0.7, s = 1.3;

double posterior_x0(double x, double alpha, double sigma) {
    return mu + alpha * s * s / (alpha * alpha * s * s + sigma * sigma) * (x - alpha * mu);
}

template <class AlphaSigmaOfT>
struct ideal_net {
    prediction kind;
    AlphaSigmaOfT of_t;
    template <class T>
    void operator()(diffuse::tensor_view<const T> x, const diffuse::model_cond& c, diffuse::tensor_view<T> out) const {
        for (std::size_t b = 0; b < x.batch; ++b) {
            const auto [alpha, sigma] = of_t(c.t[b]);
            for (std::size_t j = 0; j < x.per_sample; ++j) {
                const double xv = x.sample(b)[j], x0 = posterior_x0(xv, alpha, sigma), eps = (xv - alpha * x0) / sigma;
                double v = 0;
                switch (kind) {
                    case prediction::epsilon: v = eps; break;
                    case prediction::sample: v = x0; break;
                    case prediction::v: v = alpha * eps - sigma * x0; break;
                    case prediction::score: v = -eps / sigma; break;
                    case prediction::flow_velocity: v = eps - x0; break;
                }
                out.sample(b)[j] = T(v);
            }
        }
    }
};
}  // namespace

TEST_CASE("any network kind and time unit gives the same x0 and eps to any sampler state") {
    const auto sched = diffuse::discrete_schedule::from_config("linear", 1000);
    const diffuse::discrete_time dt(sched.alphas_cumprod);
    const diffuse::vp_sde vp{};
    auto discrete_of_t = [&](double t) {
        const double sg = dt.table.t_to_sigma_log(t), a = 1 / std::sqrt(1 + sg * sg);
        return std::pair{a, sg * a};
    };
    auto vp_of_t = [&](double t) {
        const auto m = vp.marginal(t);
        return std::pair{m.mean_coef, m.std};
    };
    auto sigma_of_t = [](double t) { return std::pair{1.0, t}; };

    // Sampler states: VE scale (α = 1) and VP scale (α = 1/√(1+σ²)), per-sample σ.
    const std::vector<double> sig = {0.05, 0.8, 9.0};
    std::vector<double> x = {0.3, -1.1, 2.5, 0.0, 4.0, -7.0};
    for (bool ve : {true, false}) {
        std::vector<double> alpha(3), sigma(3);
        for (int b = 0; b < 3; ++b) {
            alpha[b] = ve ? 1.0 : 1 / std::sqrt(1 + sig[b] * sig[b]);
            sigma[b] = sig[b] * alpha[b];
        }
        for (auto kind : {prediction::epsilon, prediction::sample, prediction::v, prediction::score}) {
            for (auto want : {prediction::sample, prediction::epsilon}) {
                std::vector<double> o1(6), o2(6), o3(6);
                diffuse::model m1(ideal_net<decltype(discrete_of_t)>{kind, discrete_of_t}, kind, dt);
                diffuse::model m2(ideal_net<decltype(vp_of_t)>{kind, vp_of_t}, kind, diffuse::continuous_time<diffuse::vp_sde>{vp});
                diffuse::model m3(ideal_net<decltype(sigma_of_t)>{kind, sigma_of_t}, kind, diffuse::sigma_time{});
                m1.predict(diffuse::batched(x, 3), alpha, sigma, want, diffuse::batched(o1, 3));
                m2.predict(diffuse::batched(x, 3), alpha, sigma, want, diffuse::batched(o2, 3));
                m3.predict(diffuse::batched(x, 3), alpha, sigma, want, diffuse::batched(o3, 3));
                for (int i = 0; i < 6; ++i) {
                    const int b = i / 2;
                    const double x0 = posterior_x0(x[i], alpha[b], sigma[b]);
                    const double expect = want == prediction::sample ? x0 : (x[i] - alpha[b] * x0) / sigma[b];
                    INFO("ve=" << ve << " kind=" << int(kind) << " want=" << int(want) << " i=" << i);
                    CHECK(o1[i] == Approx(expect).margin(1e-9));
                    CHECK(o2[i] == Approx(expect).margin(1e-9));
                    CHECK(o3[i] == Approx(expect).margin(1e-9));
                }
            }
        }
    }
}

TEST_CASE("model passes exact network times through and reports non-finite outputs") {
    const auto sched = diffuse::discrete_schedule::from_config("linear", 1000);
    std::vector<double> seen;
    auto net = [&](diffuse::tensor_view<const float> x, const diffuse::model_cond& c, diffuse::tensor_view<float> out) {
        seen.assign(c.t.begin(), c.t.end());
        for (std::size_t i = 0; i < x.size(); ++i) out.data[i] = c.t[0] > 500 ? std::numeric_limits<float>::quiet_NaN() : 0.0f;
    };
    diffuse::model m(net, prediction::epsilon, diffuse::discrete_time(sched.alphas_cumprod));
    std::vector<float> x(4, 1.0f), out(4);
    const std::vector<double> a = {0.9, 0.9}, sg = {std::sqrt(1 - 0.81), std::sqrt(1 - 0.81)}, t = {10, 20};
    m.predict(diffuse::batched(x, 2), a, sg, prediction::epsilon, diffuse::batched(out, 2), t);
    CHECK(seen == t);
    const std::vector<double> late = {900, 900};
    CHECK_THROWS_WITH(m.predict(diffuse::batched(x, 2), a, sg, prediction::epsilon, diffuse::batched(out, 2), late),
                      Catch::Contains("NaN or Inf") && Catch::Contains("t = 900"));
    const std::vector<double> one = {0.5};
    CHECK_THROWS_WITH(m.predict(diffuse::batched(x, 2), one, sg, prediction::epsilon, diffuse::batched(out, 2)),
                      Catch::Contains("one value per sample"));
}

namespace {
// A σ-space network that counts its calls and writes `width` values per sample of x (1: a prediction,
// 2: [prediction, learned variance]).
struct counting_net {
    std::size_t width = 1;
    int calls = 0;
    void operator()(diffuse::tensor_view<const float> x, const diffuse::model_cond&, diffuse::tensor_view<float> out) {
        ++calls;
        for (std::size_t i = 0; i < out.size(); ++i) out.data[i] = 0.5f * x.data[i % x.size()];
    }
};

struct shape_case {
    const char* what;
    std::size_t batch, per_sample;
};
// x is 256 x 4: a wrong out (or variance_out) is one of these.
constexpr shape_case wrong_shapes[] = {
    {"too few samples", 128, 4}, {"too many samples", 512, 4}, {"fewer elements per sample", 256, 2},
    {"more elements per sample", 256, 8}, {"the same size, another shape", 512, 2}};
}  // namespace

TEST_CASE("model::predict checks every shape and length before the network runs", "[model][shapes]") {
    using diffuse::tensor_view;
    using Catch::Contains;
    constexpr std::size_t B = 256, D = 4;
    diffuse::model m(counting_net{}, prediction::sample, diffuse::sigma_time{});
    std::vector<float> x(B * D, 1.0f), out(B * D), big(1024 * 4);
    const std::vector<double> ones(B, 1.0), sig(B, 0.5), t(B, 0.5);
    const tensor_view<const float> xv{x.data(), B, D};
    const tensor_view<float> ov{out.data(), B, D};
    for (const auto& w : wrong_shapes) {
        INFO(w.what);
        const tensor_view<float> wrong{big.data(), w.batch, w.per_sample};
        CHECK_THROWS_WITH(m.predict(xv, ones, sig, prediction::epsilon, wrong),
                          Contains("diffuse: model::predict: out is " + std::to_string(w.batch) + " x " +
                                   std::to_string(w.per_sample) + " but x is 256 x 4"));
    }
    CHECK(m.net().calls == 0);

    const std::vector<double> short_list(B - 1, 0.5), empty;
    CHECK_THROWS_WITH(m.predict(xv, short_list, sig, prediction::sample, ov),
                      Contains("alpha has 255 values but the batch has 256 samples") && Contains("one value per sample"));
    CHECK_THROWS_WITH(m.predict(xv, ones, short_list, prediction::sample, ov), Contains("sigma has 255 values"));
    CHECK_THROWS_WITH(m.predict(xv, ones, empty, prediction::sample, ov), Contains("sigma has 0 values"));
    CHECK_THROWS_WITH(m.predict(xv, ones, sig, prediction::sample, ov, short_list),
                      Contains("t_net has 255 values") && Contains("(or none)"));
    const std::vector<std::uint8_t> mask(B + 1, 1);
    CHECK_THROWS_WITH(m.predict(xv, ones, sig, prediction::sample, ov, t, 0, mask),
                      Contains("the unconditional mask has 257 values"));
    // out must not be x (the conversion to `want` reads x after the network has written out)
    CHECK_THROWS_WITH(m.predict(xv, ones, sig, prediction::epsilon, tensor_view<float>{x.data(), B, D}),
                      Contains("out and x share memory"));
    CHECK(m.net().calls == 0);

    m.predict(xv, ones, sig, prediction::sample, ov);  // the right shapes
    CHECK(m.net().calls == 1);
    CHECK(out[0] == 0.5f);
}

TEST_CASE("model::predict_with_variance checks out and variance_out against x", "[model][shapes]") {
    using diffuse::tensor_view;
    using Catch::Contains;
    constexpr std::size_t B = 256, D = 4;
    diffuse::model m(counting_net{2}, prediction::sample, diffuse::sigma_time{});
    std::vector<float> x(B * D, 1.0f), out(B * D), var(B * D), big(1024 * 4);
    const std::vector<double> ones(B, 1.0), sig(B, 0.5);
    const tensor_view<const float> xv{x.data(), B, D};
    const tensor_view<float> ov{out.data(), B, D}, vv{var.data(), B, D};
    for (const auto& w : wrong_shapes) {
        INFO(w.what);
        const tensor_view<float> wrong{big.data(), w.batch, w.per_sample};
        const std::string shape = std::to_string(w.batch) + " x " + std::to_string(w.per_sample);
        CHECK_THROWS_WITH(m.predict_with_variance(xv, ones, sig, prediction::sample, wrong, vv),
                          Contains("diffuse: model::predict_with_variance: out is " + shape + " but x is 256 x 4"));
        CHECK_THROWS_WITH(m.predict_with_variance(xv, ones, sig, prediction::sample, ov, wrong),
                          Contains("diffuse: model::predict_with_variance: variance_out is " + shape +
                                   " but x is 256 x 4"));
    }
    const std::vector<double> short_list(B - 1, 0.5);
    CHECK_THROWS_WITH(m.predict_with_variance(xv, short_list, sig, prediction::sample, ov, vv), Contains("alpha has 255"));
    CHECK_THROWS_WITH(m.predict_with_variance(xv, ones, sig, prediction::sample, ov, vv, short_list),
                      Contains("t_net has 255"));
    CHECK_THROWS_WITH(m.predict_with_variance(xv, ones, sig, prediction::sample, ov, ov),
                      Contains("variance_out and out share memory"));
    CHECK_THROWS_WITH(m.predict_with_variance(xv, ones, sig, prediction::sample, ov,
                                              tensor_view<float>{x.data() + 4, B, D}),
                      Contains("variance_out and x share memory"));
    CHECK(m.net().calls == 0);
    m.predict_with_variance(xv, ones, sig, prediction::sample, ov, vv);
    CHECK(m.net().calls == 1);
    CHECK(out[0] == 0.5f);
    CHECK(var[0] == 0.5f);
}
