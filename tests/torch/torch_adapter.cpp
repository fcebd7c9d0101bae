// libtorch tensors and modules: views alias the tensor's storage (by pointer), wrong tensors are named errors,
// and a TorchScript module sampled with DDIM through torch_network matches diffusers' DDIMScheduler.
// libtorch brings glog, whose CHECK macro would replace Catch's: Catch's macros are used with their prefix.
#define CATCH_CONFIG_PREFIX_ALL
#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "diffuse/adapt/std.hpp"
#include "diffuse/adapt/torch.hpp"
#include "diffuse/io/npy.hpp"
#include "diffuse/nn/torch_network.hpp"
#include "diffuse/samplers/ddim.hpp"
#include "diffuse/samplers/dpm_solver.hpp"
#include "diffuse/samplers/model.hpp"
#include "diffuse/schedules/beta.hpp"
#include "diffuse/schedules/sigmas.hpp"
#include "diffuse/schedules/timesteps.hpp"

using namespace diffuse;

CATCH_TEST_CASE("torch_view: a view of the tensor's own storage", "[torch]") {
    at::Tensor x = torch::randn({4, 3, 2});
    const auto v = torch_view<float>(x);
    CATCH_CHECK(v.data == x.data_ptr<float>());
    CATCH_CHECK(v.batch == 4);
    CATCH_CHECK(v.per_sample == 6);
    v.data[7] = 42.0f;  // sample 1, element 1 = x[1][0][1]
    CATCH_CHECK(x[1][0][1].item<float>() == 42.0f);
    at::Tensor d = torch::zeros({2, 5}, torch::kFloat64);
    const auto vd = torch_view<double>(d);
    CATCH_CHECK(vd.data == d.data_ptr<double>());
    CATCH_CHECK(vd.per_sample == 5);
    // a contiguous slice along the batch starts inside the same storage
    const auto tail = torch_view<float>(x.slice(0, 2, 4));
    CATCH_CHECK(tail.data == x.data_ptr<float>() + 12);
    CATCH_CHECK(tail.batch == 2);
    // an empty batch
    CATCH_CHECK(torch_view<float>(torch::zeros({0, 3})).batch == 0);
}

CATCH_TEST_CASE("torch_view: wrong tensors are named errors", "[torch]") {
    const at::Tensor f = torch::ones({3, 4});
    CATCH_CHECK_THROWS_WITH(torch_view<double>(f), Catch::Contains("holds Float, not Double"));
    CATCH_CHECK_THROWS_WITH(torch_view<float>(torch::ones({3, 4}, torch::kInt32)), Catch::Contains("holds Int"));
    CATCH_CHECK_THROWS_WITH(torch_view<float>(f.transpose(0, 1)), Catch::Contains("not contiguous"));
    CATCH_CHECK_THROWS_WITH(torch_view<float>(f.slice(1, 0, 2)), Catch::Contains("not contiguous"));
    // A device view asks for a CUDA tensor: a CPU one is refused by name (Debian's libtorch has no CUDA).
    CATCH_CHECK_THROWS_WITH(torch_cuda_view<float>(f), Catch::Contains("torch_cuda_view") && Catch::Contains("not a CUDA device"));
    static_assert(decltype(torch_cuda_view<float>(f))::space == diffuse::memory_space::device);
    CATCH_CHECK_THROWS_WITH(torch_view<float>(at::Tensor()), Catch::Contains("undefined"));
    CATCH_CHECK_THROWS_WITH(torch_view<float>(torch::tensor(1.0f)), Catch::Contains("0-dimensional"));
}

namespace {
const std::string golden = std::string(DIFFUSE_GOLDEN_DIR) + "/torch/";

std::vector<float> load_floats(const std::string& name) { return io::read_npy(golden + name).as<float>(); }
}  // namespace

CATCH_TEST_CASE("torch_network: DDIM on a TorchScript module matches diffusers", "[torch][golden]") {
    auto net = torch_network(torch_module_call{torch::jit::load(golden + "eps_mlp.pt")}, {2, 4});
    const auto sched = discrete_schedule::from_config("linear", 1000, 1e-4, 0.02);
    auto m = model(net, prediction::epsilon, discrete_time(sched.alphas_cumprod));
    auto x = load_floats("init.npy");
    const auto expected = load_floats("ddim_expected.npy");
    CATCH_REQUIRE(x.size() == 24);
    CATCH_REQUIRE(expected.size() == 24);
    ddim_options o;
    o.eta = 0.0;
    o.clip_sample = false;
    o.set_alpha_to_one = true;
    o.prev_timestep = prev_timestep_rule::fixed_stride;
    const auto grid = discrete_grid(discrete_timesteps(1000, 10, timestep_spacing::leading));
    at::Tensor xt = torch::from_blob(x.data(), {3, 2, 4}, torch::kFloat32);  // sample in the tensor's storage
    sample_ddim(m, torch_view<float>(xt), sched.alphas_cumprod, grid, o, no_noise{});
    double worst = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
        CATCH_CHECK(std::isfinite(x[i]));
        worst = std::max(worst, std::abs(double(x[i]) - double(expected[i])) / (1e-5 + std::abs(double(expected[i]))));
    }
    CATCH_CHECK(worst < 1e-5);  // float32 on both sides (measured: 1.2e-6); diffusers keeps its DDIM coefficients in float32
}

CATCH_TEST_CASE("torch_network: DPM-Solver++ 2M on a TorchScript module matches diffusers", "[torch][golden]") {
    auto net = torch_network(torch_module_call{torch::jit::load(golden + "eps_mlp.pt")}, {2, 4});
    auto ac = discrete_schedule::from_config("linear", 1000, 1e-4, 0.02).alphas_cumprod;
    for (auto& a : ac) a = double(float(a));  // diffusers holds ᾱ as a float32 tensor
    auto m = model(net, prediction::epsilon, discrete_time(ac, discrete_time::interpolation::log_sigma));
    const auto sigmas = io::read_npy(golden + "dpmpp_sigmas.npy").as<double>();
    const auto expected = load_floats("dpmpp_expected.npy");
    auto x = load_floats("init.npy");
    CATCH_REQUIRE(sigmas.size() == 21);
    CATCH_REQUIRE(expected.size() == x.size());
    // diffusers holds the VP state √ᾱ·x; the σ-space state is x_VP·√(1 + σ₀²) (init_noise_sigma = 1)
    for (auto& v : x) v = float(double(v) * std::sqrt(1.0 + sigmas[0] * sigmas[0]));
    sample_dpmpp_2m(m, batched(x, 3), time_grid(sigmas), dpmpp_2m_options{}, no_noise{});
    double worst = 0;
    for (std::size_t i = 0; i < x.size(); ++i)
        worst = std::max(worst, std::abs(double(x[i]) - double(expected[i])) / (1e-3 + std::abs(double(expected[i]))));
    CATCH_CHECK(worst < 5e-5);  // measured: 6.5e-6
}

CATCH_TEST_CASE("torch_network: DPM-Solver++ 2M through the adapter, float and double modules agree", "[torch]") {
    auto module = torch::jit::load(golden + "eps_mlp.pt");
    auto module_d = module.clone();
    module_d.to(torch::kFloat64);
    auto net_f = torch_network(torch_module_call{module}, {2, 4});
    auto net_d = torch_network(torch_module_call{module_d}, {2, 4});
    const auto sched = discrete_schedule::from_config("linear", 1000, 1e-4, 0.02);
    auto mf = model(net_f, prediction::epsilon, discrete_time(sched.alphas_cumprod));
    auto md = model(net_d, prediction::epsilon, discrete_time(sched.alphas_cumprod));
    const auto init = load_floats("init.npy");
    const auto sigmas = karras_sigmas(12, 0.03, 14.6);
    std::vector<float> xf(init.size());
    std::vector<double> xd(init.size());
    for (std::size_t i = 0; i < init.size(); ++i) xf[i] = float(init[i] * sigmas[0]), xd[i] = double(init[i]) * sigmas[0];
    sample_dpmpp_2m(mf, batched(xf, 3), time_grid(sigmas), dpmpp_2m_options{}, no_noise{});
    sample_dpmpp_2m(md, batched(xd, 3), time_grid(sigmas), dpmpp_2m_options{}, no_noise{});
    for (std::size_t i = 0; i < xd.size(); ++i) {
        CATCH_CHECK(std::isfinite(xd[i]));
        CATCH_CHECK(double(xf[i]) == Approx(xd[i]).margin(1e-4).epsilon(1e-4));
    }
    CATCH_CHECK(net_f.per_sample() == 8);
}

CATCH_TEST_CASE("torch_network: wrong module outputs and inputs are named errors", "[torch]") {
    auto wrong_shape = torch_network([](const at::Tensor& x, const at::Tensor&) { return x.reshape({-1}).slice(0, 0, 3); },
                                     {2, 4});
    auto wrong_dtype = torch_network([](const at::Tensor& x, const at::Tensor&) { return x.to(torch::kFloat64); }, {2, 4});
    auto transposed = torch_network([](const at::Tensor& x, const at::Tensor&) { return x.transpose(1, 2).transpose(1, 2) * 2; },
                                    {2, 4});
    std::vector<float> x(16, 1.0f), out(16);
    const std::vector<double> t{1.0, 2.0};
    const model_cond c{t};
    CATCH_CHECK_THROWS_WITH(wrong_shape(tensor_view<const float>{x.data(), 2, 8}, c, tensor_view<float>{out.data(), 2, 8}),
                      Catch::Contains("returned 3 values of shape [3]"));
    CATCH_CHECK_THROWS_WITH(wrong_dtype(tensor_view<const float>{x.data(), 2, 8}, c, tensor_view<float>{out.data(), 2, 8}),
                      Catch::Contains("returned Double, not Float"));
    CATCH_CHECK_THROWS_WITH(transposed(tensor_view<const float>{x.data(), 4, 4}, c, tensor_view<float>{out.data(), 4, 4}),
                      Catch::Contains("x has 4 values per sample, the module takes 8"));
    transposed(tensor_view<const float>{x.data(), 2, 8}, c, tensor_view<float>{out.data(), 2, 8});
    CATCH_CHECK(out[5] == 2.0f);
    CATCH_CHECK_THROWS_WITH(torch_network([](const at::Tensor& x, const at::Tensor&) { return x; }, {2, 0}),
                      Catch::Contains("sample_shape entry = 0"));
}
