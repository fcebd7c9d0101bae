#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "diffuse/adapt/std.hpp"
#include "diffuse/losses/denoising.hpp"
#include "diffuse/core/host_rng.hpp"
#include "diffuse/nn/mlp.hpp"

using Catch::Matchers::Contains;

namespace {
diffuse::mlp_config small_cfg() {
    diffuse::mlp_config c;
    c.data_dim = 3;
    c.hidden = 16;
    c.blocks = 2;
    c.time_embed = 8;
    c.time_scale = 10.0;
    return c;
}

// L = Σ r·y for a fixed random r (so ∂L/∂y = r), computed in double from the float outputs.
double probe_loss(diffuse::mlp_denoiser& m, const std::vector<float>& x, const std::vector<double>& cond,
                  const std::vector<float>& r) {
    std::vector<float> y(x.size());
    m.forward(x.data(), cond, cond.size(), y.data());
    double l = 0;
    for (std::size_t i = 0; i < y.size(); ++i) l += double(r[i]) * double(y[i]);
    return l;
}
}  // namespace

TEST_CASE("mlp_denoiser: backward matches finite differences", "[nn][mlp]") {
    diffuse::mlp_denoiser m(small_cfg(), 5);
    // bigger weights than the initialisation so every path matters
    diffuse::host_rng rng(3);
    for (auto& p : m.parameters()) p = float(0.4 * rng.normal());
    const std::size_t B = 4, D = 3;
    std::vector<float> x(B * D), r(B * D), gx(B * D);
    for (auto& v : x) v = float(rng.normal());
    for (auto& v : r) v = float(rng.normal());
    const std::vector<double> cond{0.1, 0.5, 0.9, 0.3};
    m.zero_grad();
    (void)probe_loss(m, x, cond, r);
    m.backward(r.data(), gx.data());
    const std::vector<float> grad(m.gradients().begin(), m.gradients().end());
    const float h = 1e-2f;
    std::size_t checked = 0;
    for (std::size_t i = 0; i < m.num_parameters(); i += 7) {
        const float p0 = m.parameters()[i];
        m.parameters()[i] = p0 + h;
        const double lp = probe_loss(m, x, cond, r);
        m.parameters()[i] = p0 - h;
        const double lm = probe_loss(m, x, cond, r);
        m.parameters()[i] = p0;
        const double fd = (lp - lm) / (2.0 * double(h));
        INFO("parameter " << i);
        CHECK(double(grad[i]) == Approx(fd).epsilon(2e-2).margin(2e-3));
        ++checked;
    }
    CHECK(checked > 100);
    for (std::size_t i = 0; i < B * D; ++i) {
        auto xp = x, xm = x;
        xp[i] += h;
        xm[i] -= h;
        const double fd = (probe_loss(m, xp, cond, r) - probe_loss(m, xm, cond, r)) / (2.0 * double(h));
        CHECK(double(gx[i]) == Approx(fd).epsilon(2e-2).margin(2e-3));
    }
    // gradients accumulate until zero_grad
    (void)probe_loss(m, x, cond, r);
    m.backward(r.data());
    CHECK(m.gradients()[0] == Approx(2 * grad[0]).epsilon(1e-5));
}

TEST_CASE("mlp_denoiser + adam fits a denoising problem", "[nn][mlp]") {
    diffuse::mlp_config c;
    c.data_dim = 2;
    c.hidden = 32;
    c.blocks = 2;
    diffuse::mlp_denoiser m(c, 1);
    diffuse::adam opt(3e-3);
    diffuse::host_rng rng(2);
    const std::size_t B = 64;
    std::vector<float> x0(B * 2), eps(B * 2), xt(B * 2), y(B * 2), g(B * 2);
    std::vector<double> t(B), a(B), s(B);
    double first = 0, last = 0;
    for (int step = 0; step < 400; ++step) {
        for (std::size_t b = 0; b < B; ++b) {
            t[b] = rng.uniform();
            a[b] = std::cos(t[b] * 1.5), s[b] = std::sin(t[b] * 1.5);
            const double sign = rng.uniform() < 0.5 ? -1.0 : 1.0;  // data: two points (±1, ±1)
            for (int j = 0; j < 2; ++j) {
                x0[b * 2 + j] = float(sign);
                eps[b * 2 + j] = float(rng.normal());
                xt[b * 2 + j] = float(a[b] * sign + s[b] * eps[b * 2 + j]);
            }
        }
        m.forward(xt.data(), t, B, y.data());
        const double loss = diffuse::denoising_loss(diffuse::denoising_target::epsilon, diffuse::batched(y, B),
                                                    diffuse::batched(x0, B), diffuse::batched(eps, B), a, s, {},
                                                    diffuse::batched(g, B));
        m.zero_grad();
        m.backward(g.data());
        opt.step(m.parameters(), m.gradients());
        if (step < 20) first += loss / 20;
        if (step >= 380) last += loss / 20;
    }
    CHECK(opt.steps() == 400);
    CHECK(last < 0.6 * first);
}

TEST_CASE("adam matches torch.optim.Adam on a scalar", "[nn][adam]") {
    // torch: p=1.0, grads 0.5, -0.2, 1.0; lr 0.1 -> values below computed by the same formula in double
    std::vector<float> p{1.0f};
    diffuse::adam opt(0.1);
    double m = 0, v = 0, pd = 1.0;
    const double gs[] = {0.5, -0.2, 1.0};
    for (int k = 0; k < 3; ++k) {
        std::vector<float> g{float(gs[k])};
        opt.step(p, g);
        m = 0.9 * m + 0.1 * gs[k];
        v = 0.999 * v + 0.001 * gs[k] * gs[k];
        pd -= 0.1 * (m / (1 - std::pow(0.9, k + 1))) / (std::sqrt(v / (1 - std::pow(0.999, k + 1))) + 1e-8);
        CHECK(p[0] == Approx(pd).epsilon(2e-6));
    }
    std::vector<float> g2(2);
    CHECK_THROWS_WITH(opt.step(p, g2), Contains("grads has 2 values"));
    diffuse::adam bad(-1.0);
    std::vector<float> g1{1.0f};
    CHECK_THROWS_WITH(bad.step(p, g1), Contains("lr = -1"));
    std::vector<float> big{3.0f, 4.0f};
    CHECK(diffuse::clip_grad_norm(big, 1.0) == Approx(5.0));
    CHECK(std::hypot(big[0], big[1]) == Approx(1.0).epsilon(1e-5));
}

TEST_CASE("mlp_denoiser: the generic denoiser interface, double tensors and bad input", "[nn][mlp][errors]") {
    diffuse::mlp_denoiser m(small_cfg(), 9);
    std::vector<double> x(6, 0.3), out(6);
    std::vector<float> xf(6, 0.3f), outf(6);
    const std::vector<double> cond{0.2, 0.7};
    m(diffuse::batched(x, 2), cond, diffuse::batched(out, 2));
    m(diffuse::batched(xf, 2), cond, diffuse::batched(outf, 2));
    for (std::size_t i = 0; i < 6; ++i) CHECK(out[i] == Approx(outf[i]).epsilon(1e-6));
    CHECK(out[0] != out[3]);  // time conditioning matters
    std::vector<double> x4(4), o4(4);
    CHECK_THROWS_WITH(m(diffuse::batched(x4, 2), cond, diffuse::batched(o4, 2)), Contains("data_dim 3"));
    const std::vector<double> cond3{0.1, 0.2, 0.3};
    CHECK_THROWS_WITH(m(diffuse::batched(x, 2), cond3, diffuse::batched(out, 2)), Contains("cond has 3 values"));
    const std::vector<double> cond_nan{0.1, NAN};
    CHECK_THROWS_WITH(m(diffuse::batched(x, 2), cond_nan, diffuse::batched(out, 2)), Contains("cond[1]"));
    diffuse::mlp_config c = small_cfg();
    c.time_embed = 7;
    CHECK_THROWS_WITH(diffuse::mlp_denoiser(c), Contains("time_embed = 7"));
    c = small_cfg();
    c.hidden = 0;
    CHECK_THROWS_WITH(diffuse::mlp_denoiser(c), Contains("hidden = 0"));
    diffuse::mlp_denoiser fresh(small_cfg());
    std::vector<float> gr(6);
    CHECK_THROWS_WITH(fresh.backward(gr.data()), Contains("call forward before backward"));
}

TEST_CASE("mlp_denoiser: safetensors save and load", "[nn][mlp][io]") {
    diffuse::mlp_denoiser m(small_cfg(), 4);
    const std::string path = "test_mlp_weights.safetensors";
    m.save(path);
    auto back = diffuse::mlp_denoiser::load(path);
    CHECK(back.config().hidden == 16);
    CHECK(back.config().time_scale == 10.0);
    REQUIRE(back.num_parameters() == m.num_parameters());
    for (std::size_t i = 0; i < m.num_parameters(); ++i) REQUIRE(back.parameters()[i] == m.parameters()[i]);
    std::vector<double> x(6, 0.1), o1(6), o2(6);
    const std::vector<double> cond{0.2, 0.7};
    m(diffuse::batched(x, 2), cond, diffuse::batched(o1, 2));
    back(diffuse::batched(x, 2), cond, diffuse::batched(o2, 2));
    CHECK(o1 == o2);
    const auto& st_names = m.named_parameters();
    CHECK(st_names.front().name == "input.weight");
    CHECK(st_names.front().shape == std::vector<std::uint64_t>{16, 11});
    // truncated file
    {
        std::ifstream f(path, std::ios::binary);
        std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        std::ofstream t("test_mlp_trunc.safetensors", std::ios::binary);
        t.write(bytes.data(), std::streamsize(bytes.size() - 5));
    }
    CHECK_THROWS_WITH(diffuse::mlp_denoiser::load("test_mlp_trunc.safetensors"), Contains("truncated"));
    // a file with the wrong shapes / metadata
    auto w = m.to_safetensors();
    w.set_metadata("hidden", "17");
    w.write("test_mlp_bad.safetensors");
    CHECK_THROWS_WITH(diffuse::mlp_denoiser::load("test_mlp_bad.safetensors"), Contains("has shape [16, 11]"));
    w.set_metadata("hidden", "abc");
    w.write("test_mlp_bad.safetensors");
    CHECK_THROWS_WITH(diffuse::mlp_denoiser::load("test_mlp_bad.safetensors"), Contains("hidden = \"abc\""));
    w.set_metadata("hidden", "99999999");
    w.write("test_mlp_bad.safetensors");
    CHECK_THROWS_WITH(diffuse::mlp_denoiser::load("test_mlp_bad.safetensors"), Contains("hidden = 99999999"));
    diffuse::io::safetensors_writer other;
    const std::vector<float> v{1.f};
    other.add("x", {1}, std::span<const float>(v));
    other.write("test_mlp_bad.safetensors");
    CHECK_THROWS_WITH(diffuse::mlp_denoiser::load("test_mlp_bad.safetensors"), Contains("\"format\" is missing"));
    std::remove(path.c_str());
    std::remove("test_mlp_trunc.safetensors");
    std::remove("test_mlp_bad.safetensors");
}

// The same network in torch (tools/gen_mlp_golden.py), forward and backward in float64 from the float32
// weights and inputs, over configurations drawn at random (widths and batches off the GEMM's tile sizes).
TEST_CASE("mlp_denoiser: forward and backward match torch", "[nn][mlp][golden]") {
    const std::string dir = std::string(DIFFUSE_GOLDEN_DIR) + "/nn/mlp/";
    // |ours − torch| ≤ tol·(max |torch| over the tensor): float32 products of ≤ 60 terms against float64
    constexpr double tol = 2e-5;
    auto close = [](const std::vector<float>& ours, const std::vector<double>& ref, const std::string& what) {
        REQUIRE(ours.size() == ref.size());
        double scale = 0;
        for (double r : ref) scale = std::max(scale, std::abs(r));
        for (std::size_t i = 0; i < ref.size(); ++i) {
            INFO(what << "[" << i << "] ours " << ours[i] << " torch " << ref[i]);
            CHECK(std::abs(double(ours[i]) - ref[i]) <= tol * scale + 1e-30);
        }
    };
    std::size_t cases = 0;
    for (int k = 0;; ++k) {
        const std::string base = dir + "case_" + std::to_string(k);
        if (!std::ifstream(base + "_weights.safetensors")) break;
        ++cases;
        INFO("case " << k);
        auto m = diffuse::mlp_denoiser::load(base + "_weights.safetensors");
        const auto io = diffuse::io::read_safetensors(base + "_io.safetensors");
        const auto x = io.as<float>("x");
        const auto cond = io.as<double>("cond");
        const auto gout = io.as<float>("grad_out");
        const std::size_t B = cond.size(), D = m.config().data_dim;
        REQUIRE(x.size() == B * D);
        std::vector<float> y(B * D), gx(B * D);
        m.forward(x.data(), cond, B, y.data());
        close(y, io.as<double>("out"), "out");
        m.zero_grad();
        m.backward(gout.data(), gx.data());
        close(gx, io.as<double>("grad_x"), "grad_x");
        for (const auto& prm : m.named_parameters()) {
            const auto g = m.gradients().subspan(prm.offset, prm.size);
            close(std::vector<float>(g.begin(), g.end()), io.as<double>("grad." + prm.name), "grad." + prm.name);
        }
    }
    CHECK(cases == 12);
}
