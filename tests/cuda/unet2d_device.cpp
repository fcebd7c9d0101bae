// The device U-Net (diffuse/cuda/unet2d.hpp) against the CPU U-Net (nn/unet2d.hpp), its kernels' bodies run
// on the host (THRUST_DEVICE_SYSTEM_CPP): the golden folders' networks and inputs, random configurations, a
// short DDIM run on a thrust::device_vector against DDIM written out over the CPU U-Net, and the shape checks.
//
// Tolerance: the two differ in the order of the long sums (here the GEMM host loop's one running sum per
// output over the im2col columns, a residual the output holds added before the bias; the CPU's blocked GEMM /
// Winograd there), in the group norm's variance (two-pass Σ(x − μ)² here, E[x²] − μ² there) and in exp (expf vs
// nn's polynomial exp_approx, ~1e-7 relative): a few float ulps per layer. Measured (g++ -O3, max |device − cpu|
// / max |cpu|): 4.0e-7 … 8.8e-7 on the nine golden folders below, ≤ 2.6e-6 on the 24 random configurations
// (unet2d_checks.hpp), about the CPU model's own change when x moves by one ulp; 7.9e-5 after 3 DDIM steps (the
// update divides by √ᾱ ≈ 0.2 and the random-weight network amplifies). The bounds, 1e-5 and 1e-3, are 3.8x and
// 12x the measurement and far under what a wrong layer gives (order 1). On a GPU (test_cuda_gpu) cuBLAS sums in
// its own order (FP32, no TF32): the same rounding scale.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <thrust/copy.h>
#include <thrust/device_vector.h>

#include "diffuse/adapt/std.hpp"
#include "diffuse/adapt/thrust.hpp"
#include "diffuse/cuda/graph.hpp"
#include "diffuse/cuda/unet2d.hpp"
#include "diffuse/io/diffusers.hpp"
#include "diffuse/io/npy.hpp"
#include "diffuse/samplers/ddim.hpp"
#include "diffuse/samplers/model.hpp"
#include "diffuse/schedules/beta.hpp"
#include "unet2d_checks.hpp"

namespace {

namespace fs = std::filesystem;
const fs::path golden = fs::path(DIFFUSE_GOLDEN_DIR) / "unet";

double max_relative_error(const std::vector<float>& a, const std::vector<float>& b) {
    REQUIRE(a.size() == b.size());
    return diffuse_device_checks::max_relative_error(a, b);
}

template <class T>
std::vector<float> to_host(const T& device) {
    std::vector<float> v(device.size());
    thrust::copy(device.begin(), device.end(), v.begin());
    return v;
}

// A golden folder's network, input and CPU output.
struct golden_case {
    explicit golden_case(diffuse::nn::unet2d net) : cpu(std::move(net)) {}
    diffuse::nn::unet2d cpu;
    std::size_t batch = 0, h = 0, w = 0;
    std::vector<float> x, class_vectors, expected;
    std::vector<double> t;
    std::vector<std::int64_t> labels;
};
golden_case load_golden(const std::string& name) {
    const fs::path dir = golden / name;
    golden_case g(diffuse::io::load_unet2d(dir));
    const auto xs = diffuse::io::read_npy((dir / "x.npy").string());
    g.batch = xs.shape[0];
    g.h = xs.shape[2];
    g.w = xs.shape[3];
    g.x = xs.as<float>();
    g.t = diffuse::io::read_npy((dir / "t.npy").string()).as<double>();
    if (fs::exists(dir / "class.npy")) {  // class_embed_type "identity": float vectors, not labels
        const auto cl = diffuse::io::read_npy((dir / "class.npy").string());
        if (cl.dtype == "<f4") g.class_vectors = cl.as<float>();
        else g.labels = cl.as<std::int64_t>();
    }
    g.expected.resize(g.batch * g.cpu.config().out_channels * g.h * g.w);
    g.cpu.forward(g.x.data(), g.batch, g.h, g.w, g.t, g.labels, g.expected.data(), g.class_vectors);
    return g;
}
// net's forward of g's input (twice when `again`: the second call of a shape reuses the workspace and must give
// the same values)
std::vector<float> device_forward(diffuse::nn::device_unet2d& net, const golden_case& g, bool again = false) {
    const std::size_t out_n = g.expected.size();
    thrust::device_vector<float> dx(g.x.begin(), g.x.end()), dout(out_n);
    const auto xv = diffuse::device_view(static_cast<const float*>(thrust::raw_pointer_cast(dx.data())), g.batch, g.x.size() / g.batch);
    const auto ov = diffuse::device_view(thrust::raw_pointer_cast(dout.data()), g.batch, out_n / g.batch);
    net.forward(xv, g.h, g.w, g.t, g.labels, ov, g.class_vectors);
    std::vector<float> result = to_host(dout);
    if (again) {
        thrust::device_vector<float> second(out_n);
        net.forward(xv, g.h, g.w, g.t, g.labels,
                    diffuse::device_view(thrust::raw_pointer_cast(second.data()), g.batch, out_n / g.batch), g.class_vectors);
        CHECK(to_host(second) == result);
    }
    return result;
}
// A convolution engine over host memory (under DIFFUSE_CUDA_ON_HOST the device pointers are host pointers): the
// operands decoded from their storage, then reference_convolution (recorded, not run, while a capture records:
// the host-run graph's operations); it declines the problems `declines` picks.
class host_direct_engine final : public diffuse::nn::device_conv_engine {
public:
    explicit host_direct_engine(std::function<bool(const diffuse::nn::conv_problem&)> declines = {})
        : declines_(std::move(declines)) {}
    bool supports(const diffuse::nn::conv_problem& p) override { return !(declines_ && declines_(p)); }
    void convolve(const diffuse::nn::conv_problem& p, const void* x, const void* w, float* y) override {
        diffuse::detail::run_or_record([p, x, w, y] {
            diffuse::detail::with_operand(p.precision, "host_direct_engine", [&](auto operand) {
                using Operand = decltype(operand);
                using storage = typename Operand::storage;
                const auto decode = [](const void* v, std::size_t n) {
                    std::vector<float> d(n);
                    for (std::size_t i = 0; i < n; ++i) d[i] = Operand::decode(static_cast<const storage*>(v)[i]);
                    return d;
                };
                const auto xd = decode(x, p.batch * p.h * p.w * p.cin), wd = decode(w, p.cout * p.k * p.k * p.cin);
                diffuse_device_checks::reference_convolution(p, xd.data(), wd.data(), y);
            });
        });
    }
    std::string name() const override { return "host direct convolution"; }

private:
    std::function<bool(const diffuse::nn::conv_problem&)> declines_;
};

constexpr const char* golden_names[] = {"cifar10_tiny", "class_cond", "resnet_sampling", "scale_shift", "class_timestep",
                                        "fourier", "class_identity", "learned", "multihead"};

}  // namespace

TEST_CASE("device U-Net forward equals the CPU forward on the golden networks", "[cuda_host][unet2d]") {
    for (const char* name : golden_names) {
        INFO(name);
        const golden_case g = load_golden(name);
        diffuse::nn::device_unet2d net(g.cpu);
        CHECK(net.precision() == diffuse::device_precision::fp32);
        const std::vector<float> out = device_forward(net, g, true);
        const double err = max_relative_error(out, g.expected);
        INFO("max relative error " << err);
        CHECK(err < 1e-5);
        // fp32 named explicitly is the default model, bit for bit
        diffuse::nn::device_unet2d explicit_fp32(g.cpu, diffuse::device_precision::fp32);
        CHECK(device_forward(explicit_fp32, g) == out);
    }
}

TEST_CASE("device U-Net in TF32, BF16 and FP16 agrees with the CPU U-Net to the operands' precision", "[cuda_host][unet2d]") {
    using diffuse::device_precision;
    namespace checks = diffuse_device_checks;
    // Each golden folder in one of the three precisions, in turn (all 27 forwards of the host loop cost 14 s at
    // -O0). The CPU golden output stands in for the fp32 device one, which is within 1e-6 of it (the test above):
    // an error above unet2d_min_deviation (>= 2^-p/64, 15x that) shows the operands were rounded.
    const device_precision precisions[] = {device_precision::tf32, device_precision::bf16, device_precision::fp16};
    std::size_t turn = 0;
    for (const char* name : golden_names) {
        const golden_case g = load_golden(name);
        const device_precision p = precisions[turn++ % 3];
        diffuse::nn::device_unet2d net(g.cpu, p);
        CHECK(net.precision() == p);
        const std::vector<float> out = device_forward(net, g, true);
        const double err = max_relative_error(out, g.expected);
        INFO(name << " " << diffuse::precision_name(p) << ": max relative error " << err << " ("
                  << err / std::ldexp(1.0, -diffuse::fraction_bits(p)) << " x 2^-p)");
        CHECK(err < checks::unet2d_tolerance(p));
        CHECK(err > checks::unet2d_min_deviation(p));
    }
    const golden_case g = load_golden("cifar10_tiny");
    CHECK_THROWS_AS(diffuse::nn::device_unet2d(g.cpu, static_cast<device_precision>(4)), diffuse::error);
}

TEST_CASE("device U-Net equals the CPU U-Net on random small configurations (property)", "[cuda_host][unet2d]") {
    std::mt19937_64 rng(20261203);
    for (int round = 0; round < 24; ++round) {
        const auto r = diffuse_device_checks::random_unet2d_forward(rng);
        INFO("round " << round << ": " << r.description << ": max relative error " << r.max_relative_error);
        CHECK(r.max_relative_error < 1e-5);
        CHECK(r.graph_replay_same_bits);
    }
}

TEST_CASE("device U-Net in TF32, BF16 and FP16 on random small configurations (property)", "[cuda_host][unet2d]") {
    using diffuse::device_precision;
    namespace checks = diffuse_device_checks;
    std::mt19937_64 rng(20261206);
    for (int round = 0; round < 12; ++round) {
        const device_precision p = std::array{device_precision::tf32, device_precision::bf16, device_precision::fp16}[round % 3];
        const auto r = checks::random_unet2d_forward(rng, p);
        INFO("round " << round << ": " << r.description << ": max relative error " << r.max_relative_error << " ("
                      << r.max_relative_error / std::ldexp(1.0, -diffuse::fraction_bits(p)) << " x 2^-p), against fp32 "
                      << r.vs_fp32);
        CHECK(r.max_relative_error < checks::unet2d_tolerance(p));
        CHECK(r.vs_fp32 > checks::unet2d_min_deviation(p));
        CHECK(r.graph_replay_same_bits);
    }
}

TEST_CASE("device U-Net with a convolution engine equals the CPU U-Net (property)", "[cuda_host][unet2d]") {
    // The engine path (KRSC weights, the prologue into the engine's input, the epilogue beside a residual that is
    // the output) in every precision, on the golden networks and random configurations; an engine that declines
    // the strided and the asymmetrically padded problems mixes the two paths in one forward.
    using diffuse::device_precision;
    namespace checks = diffuse_device_checks;
    const auto engine = std::make_shared<host_direct_engine>();
    const auto partial = std::make_shared<host_direct_engine>([](const diffuse::nn::conv_problem& p) {
        return p.stride != 1 || p.pad.top != p.pad.bottom || p.pad.left != p.pad.right;
    });
    for (const char* name : {"cifar10_tiny", "scale_shift", "class_identity"}) {
        const golden_case g = load_golden(name);
        diffuse::nn::device_unet2d net(g.cpu);
        net.set_conv_engine(engine);
        CHECK(net.conv_engine() == engine);
        const std::vector<float> out = device_forward(net, g, true);
        INFO(name << ": max relative error " << max_relative_error(out, g.expected));
        CHECK(max_relative_error(out, g.expected) < 1e-5);
        CHECK(net.engine_use().engine > 0);
        CHECK(net.engine_use().declined == 0);
    }
    std::mt19937_64 rng(20261205);
    diffuse::nn::conv_engine_use declined_use;
    for (int round = 0; round < 16; ++round) {
        const device_precision p = std::array{device_precision::fp32, device_precision::tf32, device_precision::bf16,
                                              device_precision::fp16}[round % 4];
        const auto r = checks::random_unet2d_forward(rng, p, round % 2 ? partial : engine);
        INFO("round " << round << ": " << r.description << ": max relative error " << r.max_relative_error);
        CHECK(r.max_relative_error < checks::unet2d_tolerance(p));
        if (p != device_precision::fp32) CHECK(r.vs_fp32 > checks::unet2d_min_deviation(p));
        CHECK(r.graph_replay_same_bits);
        CHECK(r.engine_use.engine > 0);
        if (round % 2 == 0) CHECK(r.engine_use.declined == 0);
        declined_use.declined += r.engine_use.declined;
    }
    CHECK(declined_use.declined > 0);  // the partial engine declined some downsampling convolutions
}

TEST_CASE("device U-Net checks shapes, times and labels", "[cuda_host][unet2d]") {
    diffuse::nn::unet2d cpu = diffuse::io::load_unet2d(golden / "class_cond");
    diffuse::nn::device_unet2d net(cpu);
    const std::size_t C = cpu.config().in_channels, h = 8, w = 8;
    thrust::device_vector<float> x(2 * C * h * w), out(2 * cpu.config().out_channels * h * w);
    const auto xv = diffuse::device_view(static_cast<const float*>(thrust::raw_pointer_cast(x.data())), 2, C * h * w);
    const auto ov = diffuse::device_view(thrust::raw_pointer_cast(out.data()), 2, out.size() / 2);
    const std::vector<double> t{10, 20};
    const std::vector<std::int64_t> labels{1, 2};
    CHECK_NOTHROW(net.forward(xv, h, w, t, labels, ov));
    CHECK_THROWS_AS(net.forward(xv, 6, 6, t, labels, ov), diffuse::error);           // not a multiple of the factor
    CHECK_THROWS_AS(net.forward(xv, 8, 16, t, labels, ov), diffuse::error);          // size vs per-sample values
    CHECK_THROWS_AS(net.forward(xv, h, w, std::vector<double>{1}, labels, ov), diffuse::error);  // one time for two
    CHECK_THROWS_AS(net.forward(xv, h, w, t, {}, ov), diffuse::error);               // class-conditional: labels needed
    CHECK_THROWS_AS(net.forward(xv, h, w, t, std::vector<std::int64_t>{1, 11}, ov), diffuse::error);  // label range
    const auto short_out = diffuse::device_view(thrust::raw_pointer_cast(out.data()), 1, out.size() / 2);
    CHECK_THROWS_AS(net.forward(xv, h, w, t, labels, short_out), diffuse::error);    // out batch
    CHECK_THROWS_AS(net.forward(xv, h, w, t, labels, ov, std::vector<float>(2 * cpu.config().time_embed_dim())),
                    diffuse::error);  // class vectors for a class-table model
    diffuse::nn::device_unet2d_network f(net, h, w);
    CHECK_THROWS_AS(diffuse::nn::device_unet2d_network(net, 7, 8), diffuse::error);

    // class_embed_type "identity": batch x time_embed_dim class vectors, no labels
    diffuse::nn::unet2d cpu_identity = diffuse::io::load_unet2d(golden / "class_identity");
    diffuse::nn::device_unet2d identity(cpu_identity);
    const std::vector<float> vectors(2 * cpu_identity.config().time_embed_dim(), 0.5f);
    CHECK_NOTHROW(identity.forward(xv, h, w, t, {}, ov, vectors));
    CHECK_THROWS_AS(identity.forward(xv, h, w, t, {}, ov), diffuse::error);                       // vectors needed
    CHECK_THROWS_AS(identity.forward(xv, h, w, t, {}, ov, std::span(vectors).first(vectors.size() - 1)),
                    diffuse::error);                                                              // one value short
    CHECK_THROWS_AS(identity.forward(xv, h, w, t, labels, ov, vectors), diffuse::error);          // labels as well
}

TEST_CASE("DDIM with the device U-Net on a thrust::device_vector equals DDIM over the CPU U-Net", "[cuda_host][unet2d]") {
    diffuse::nn::unet2d cpu = diffuse::io::load_unet2d(golden / "cifar10_tiny");
    diffuse::nn::device_unet2d dnet(cpu);
    const std::size_t batch = 2, h = 16, w = 16, per = cpu.config().in_channels * h * w;
    const auto a = diffuse::alphas_from_betas(diffuse::linear_betas(1000));
    std::vector<double> ac(a.size());
    double p = 1;
    for (std::size_t i = 0; i < a.size(); ++i) ac[i] = p *= a[i];
    const std::vector<std::int64_t> steps{900, 600, 300};
    const diffuse::time_grid grid = diffuse::discrete_grid(steps);
    std::vector<float> x0(batch * per);
    for (std::size_t i = 0; i < x0.size(); ++i) x0[i] = std::sin(0.37f * float(i));

    // the reference, written out: eq. 12 of Song et al. with η = 0 (samplers/ddim.hpp) over the CPU U-Net's ε,
    // x̂₀ = (x − √(1 − ᾱ_t)·ε)/√ᾱ_t clipped to [−1, 1] (ddim_options' default), x ← √ᾱ_p·x̂₀ + √(1 − ᾱ_p)·ε
    // with p the next timestep and ᾱ_p = 1 past the last (set_alpha_to_one)
    std::vector<float> host = x0, eps(host.size());
    for (std::size_t i = 0; i < steps.size(); ++i) {
        const double at = ac[std::size_t(steps[i])], ap = i + 1 < steps.size() ? ac[std::size_t(steps[i + 1])] : 1.0;
        cpu.forward(host.data(), batch, h, w, std::vector<double>(batch, double(steps[i])), {}, eps.data());
        for (std::size_t k = 0; k < host.size(); ++k) {
            const double x0_hat = std::clamp((host[k] - std::sqrt(1 - at) * eps[k]) / std::sqrt(at), -1.0, 1.0);
            host[k] = static_cast<float>(std::sqrt(ap) * x0_hat + std::sqrt(1 - ap) * eps[k]);
        }
    }

    thrust::device_vector<float> device(x0.begin(), x0.end());
    diffuse::model md(diffuse::nn::device_unet2d_network(dnet, h, w), diffuse::prediction::epsilon, diffuse::discrete_time(ac));
    diffuse::sample_ddim(md, diffuse::batched(device, batch), ac, grid, diffuse::ddim_options{});
    const std::vector<float> back = to_host(device);
    REQUIRE(host != x0);
    const double err = max_relative_error(back, host);
    INFO("max relative error after 3 DDIM steps " << err);
    CHECK(err < 1e-3);

    // the same run captured as one CUDA graph (a fresh network: its workspace grows inside the capture) replays
    // with the direct run's bits, twice
    diffuse::nn::device_unet2d gnet(cpu);
    thrust::device_vector<float> captured(x0.begin(), x0.end());
    diffuse::model mg(diffuse::nn::device_unet2d_network(gnet, h, w), diffuse::prediction::epsilon, diffuse::discrete_time(ac));
    auto graph = diffuse::capture_graph([&] { diffuse::sample_ddim(mg, diffuse::batched(captured, batch), ac, grid, diffuse::ddim_options{}); });
    CHECK(to_host(captured) == x0);
    CHECK(graph.checks() == steps.size() + 1);
    for (int replay = 0; replay < 2; ++replay) {
        thrust::copy(x0.begin(), x0.end(), captured.begin());
        graph.replay();
        CHECK(to_host(captured) == back);
    }
    // a direct forward at twice the batch grows the network's workspace; the graph keeps the buffers it captured
    thrust::device_vector<float> wide_x(2 * x0.size(), 0.25f), wide_out(2 * x0.size());
    gnet.forward(diffuse::batched(wide_x, 2 * batch), h, w, std::vector<double>(2 * batch, 500.0), {},
                 diffuse::batched(wide_out, 2 * batch));
    thrust::copy(x0.begin(), x0.end(), captured.begin());
    graph.replay();
    CHECK(to_host(captured) == back);
}
