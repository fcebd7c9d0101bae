// diffuse::scheduler_from_config (samplers/scheduler_config.hpp) and the CLI's spec.scheduler_config: every golden
// case of tests/golden/scheduler_config (real scheduler_config.json files written by diffusers, sampled by its own
// loop; tools/gen_scheduler_config_golden.py) through the library API and through `diffuse sample`'s code, the
// per-class defaults, the warnings, and every error naming the class, the key or the spec field.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "../cli/spec_error.hpp"
#include "../../tools/diffuse/run_spec.hpp"
#include "diffuse/adapt/std.hpp"
#include "diffuse/io/npy.hpp"
#include "diffuse/samplers/analytic.hpp"
#include "diffuse/samplers/scheduler_config.hpp"

namespace fs = std::filesystem;
using namespace diffuse;

namespace {

const fs::path golden_dir = fs::path(DIFFUSE_GOLDEN_DIR) / "scheduler_config";

std::vector<fs::path> golden_specs() {
    std::vector<fs::path> out;
    if (!fs::exists(golden_dir)) return out;
    for (const auto& e : fs::directory_iterator(golden_dir)) {
        const auto name = e.path().filename().string();
        if (e.path().extension() == ".json" && !name.ends_with("_scheduler_config.json")) out.push_back(e.path());
    }
    std::sort(out.begin(), out.end());
    return out;
}

std::vector<double> flat_numbers(const io::json_value& v) {
    std::vector<double> out;
    if (v.is_number()) return {v.as_number()};
    for (const auto& e : v.as_array()) {
        const auto inner = flat_numbers(e);
        out.insert(out.end(), inner.begin(), inner.end());
    }
    return out;
}

// The largest excess of |got − want| over atol + rtol·|want| (≤ 0: within tolerance).
double worst_excess(const std::vector<double>& got, const std::vector<double>& want, double rtol, double atol) {
    REQUIRE(got.size() == want.size());
    double worst = -1;
    for (std::size_t i = 0; i < want.size(); ++i)
        worst = std::max(worst, std::abs(got[i] - want[i]) - (atol + rtol * std::abs(want[i])));
    return worst;
}

// The library API alone: the file, the latents, the exact denoiser on the scheduler's clock, the recorded noise.
std::vector<double> run_library(const io::json_value& spec) {
    const auto sched = scheduler_from_config_file((golden_dir / spec.at("scheduler_config").as_string()).string());
    auto x = io::read_npy((golden_dir / spec.at("init_noise").as_string()).string()).as<double>();
    const std::size_t B = std::size_t(spec.at("shape").as_array()[0].as_number());
    const auto& dn = spec.at("denoiser");
    gaussian_mixture data(flat_numbers(dn.at("weights")), flat_numbers(dn.at("means")), flat_numbers(dn.at("variances")));
    const std::size_t N = std::size_t(spec.at("num_inference_steps").as_number());
    std::optional<double> mu;
    if (const auto* m = spec.find("mu")) mu = m->as_number();
    auto run = [&](auto& model) {
        if (const auto* f = spec.find("step_noise")) {
            const recorded_noise noise(io::read_npy((golden_dir / f->as_string()).string()).as<double>(), x.size());
            sched.sample(model, batched(x, B), N, noise, no_observer{}, mu);
        } else {
            sched.sample(model, batched(x, B), N, counter_noise{3, 0}, no_observer{}, mu);
        }
    };
    if (sched.is_flow()) {
        auto m = analytic_model(data, sched.prediction_type, sched.flow_model_time());
        run(m);
    } else if (sched.is_edm()) {  // an EDM-preconditioned network: its model predicts x₀
        auto m = analytic_model(data, prediction::sample, sched.edm_model_time());
        run(m);
    } else {
        auto m = analytic_model(data, sched.prediction_type, sched.discrete_model_time());
        run(m);
    }
    return x;
}

std::string error_of(const std::string& config) {
    try {
        (void)scheduler_from_config(io::parse_json(config, scheduler_config_json_limits()));
    } catch (const diffuse::error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("scheduler_config golden: diffusers' own files, sampled through the library and the CLI",
          "[diffusers_schedulers][scheduler_config][golden]") {
    const auto specs = golden_specs();
    REQUIRE(specs.size() >= 60);
    std::map<std::string, int> per_class;
    for (const auto& path : specs) {
        INFO("spec " << path.string());
        const auto root = cli::load_json(path);
        const auto& test = root.at("test");
        const auto expected = io::read_npy((golden_dir / test.at("expected").as_string()).string()).as<double>();
        const double rtol = test.at("rtol").as_number(), atol = test.at("atol").as_number();
        const auto lib = run_library(root);
        CHECK(worst_excess(lib, expected, rtol, atol) <= 0);
        const auto cli = cli::run_spec(root, golden_dir);
        CHECK(worst_excess(cli.x, expected, rtol, atol) <= 0);
        CHECK(cli.x == lib);  // the same code path: the same bits
        ++per_class[scheduler_from_config_file((golden_dir / root.at("scheduler_config").as_string()).string()).class_name];
    }
    for (const auto& name : supported_scheduler_classes()) {
        INFO("class " << name);
        CHECK(per_class[name] >= 4);
    }
}

TEST_CASE("scheduler_from_config: per-class defaults, metadata and ignored keys", "[diffusers_schedulers][scheduler_config]") {
    // Heun's defaults are not Euler's (beta_start 0.00085, beta_end 0.012)
    const auto heun = scheduler_from_config(io::parse_json(R"({"_class_name": "HeunDiscreteScheduler", "_diffusers_version": "0.42.1"})"));
    CHECK(heun.schedule.alphas_cumprod == discrete_schedule::from_config("linear", 1000, 0.00085, 0.012).alphas_cumprod);
    CHECK(heun.warnings().empty());
    const auto euler = scheduler_from_config(io::parse_json(R"({"_class_name": "EulerDiscreteScheduler", "clip_sample": true, "variance_type": "x"})"));
    CHECK(euler.schedule.alphas_cumprod == discrete_schedule::from_config("linear", 1000, 1e-4, 0.02).alphas_cumprod);
    REQUIRE(euler.warnings().size() == 2);
    CHECK(euler.warnings()[0] == "clip_sample: ignored (not a parameter of EulerDiscreteScheduler)");
    CHECK(euler.interpolation == discrete_time::interpolation::linear_sigma);
    CHECK(scheduler_from_config(io::parse_json(R"({"_class_name": "LMSDiscreteScheduler", "use_karras_sigmas": true})")).interpolation ==
          discrete_time::interpolation::log_sigma);
    const auto lcm = scheduler_from_config(io::parse_json(R"({"_class_name": "LCMScheduler"})"));
    CHECK(lcm.schedule.alphas_cumprod == discrete_schedule::from_config("scaled_linear", 1000, 0.00085, 0.012).alphas_cumprod);
    const auto flow = scheduler_from_config(io::parse_json(R"({"_class_name": "FlowMatchEulerDiscreteScheduler", "num_train_timesteps": 500})"));
    CHECK(flow.is_flow());
    CHECK(flow.prediction_type == prediction::flow_velocity);
    CHECK(flow.flow_model_time().num_train_timesteps == 500.0);
    CHECK(flow.mu_for(256) == Approx(0.5));
    CHECK(flow.mu_for(4096) == Approx(1.15));
    CHECK_THROWS_AS(flow.discrete_model_time(), error);
    CHECK_THROWS_AS(heun.flow_model_time(), error);
    // trained_betas wins over beta_schedule and sets the number of training timesteps
    const auto tb = scheduler_from_config(io::parse_json(R"({"_class_name": "DDPMScheduler", "trained_betas": [0.1, 0.2, 0.3]})"));
    CHECK(tb.schedule.alphas_cumprod.size() == 3);
    // the DPM-Solver files diffusers writes hold -Infinity
    const auto dpm = scheduler_from_config(io::parse_json(R"({"_class_name": "DPMSolverMultistepScheduler", "lambda_min_clipped": -Infinity})",
                                                          scheduler_config_json_limits()));
    CHECK(std::get<scheduler_recipes::solver>(dpm.recipe).table.lambda_min_clipped == -std::numeric_limits<double>::infinity());
    CHECK_THROWS_AS(io::parse_json(R"({"a": -Infinity})"), error);  // strict by default
    CHECK(std::isnan(io::parse_json("NaN", scheduler_config_json_limits()).as_number()));
    CHECK_THROWS_AS(io::parse_json("-Inf", scheduler_config_json_limits()), error);
    // the classes added with their own clocks and defaults
    const auto tcd = scheduler_from_config(io::parse_json(R"({"_class_name": "TCDScheduler"})"));
    CHECK(tcd.schedule.alphas_cumprod == lcm.schedule.alphas_cumprod);
    CHECK(std::get<scheduler_recipes::discrete>(tcd.recipe).tcd.eta == 0.3);
    const auto kdpm2a = scheduler_from_config(io::parse_json(R"({"_class_name": "KDPM2AncestralDiscreteScheduler", "use_beta_sigmas": true})"));
    CHECK(kdpm2a.schedule.alphas_cumprod == heun.schedule.alphas_cumprod);
    CHECK(kdpm2a.interpolation == discrete_time::interpolation::linear_sigma);
    const auto edm = scheduler_from_config(io::parse_json(R"({"_class_name": "EDMDPMSolverMultistepScheduler", "sigma_data": 0.7,
                                                              "prediction_type": "v_prediction", "algorithm_type": "deis",
                                                              "final_sigmas_type": "sigma_min"})"));
    CHECK(edm.is_edm());
    CHECK(edm.schedule.alphas_cumprod.empty());
    CHECK(edm.edm_model_time().sigma_data == 0.7);
    CHECK(edm.edm_model_time().output == edm_output::v_prediction);
    CHECK(std::get<scheduler_recipes::edm>(edm.recipe).multistep.algorithm_type == dpm_solver_algorithm::dpmsolver_pp);
    CHECK(std::get<scheduler_recipes::edm>(edm.recipe).table.sigma_max == 80.0);
    CHECK_THROWS_AS(edm.discrete_model_time(), error);
    CHECK_THROWS_AS(edm.flow_model_time(), error);
    CHECK_THROWS_AS(heun.edm_model_time(), error);
    CHECK(supported_scheduler_classes().size() == 19);
}

TEST_CASE("scheduler_from_config: errors name the class, the key and the value", "[diffusers_schedulers][scheduler_config][errors]") {
    auto starts = [](const std::string& msg, const std::string& prefix) {
        INFO(msg);
        return msg.find(prefix) != std::string::npos;
    };
    CHECK(starts(error_of(R"({"_class_name": "PNDMScheduler"})"), "_class_name: \"PNDMScheduler\" is not a supported scheduler"));
    CHECK(starts(error_of(R"({"beta_start": 0.1})"), "_class_name: missing"));
    CHECK(starts(error_of(R"([1])"), "a JSON object"));
    CHECK(starts(error_of(R"({"_class_name": "DDPMScheduler", "variance_type": "learned"})"), "DDPMScheduler.variance_type: \"learned\" is not supported"));
    CHECK(starts(error_of(R"({"_class_name": "DDPMScheduler", "variance_type": "fixed_large_log"})"), "DDPMScheduler.variance_type:"));
    CHECK(starts(error_of(R"({"_class_name": "DDPMScheduler", "beta_start": "x"})"), "DDPMScheduler.beta_start: expected a number"));
    CHECK(starts(error_of(R"({"_class_name": "DDPMScheduler", "beta_schedule": "sigmoid"})"), "DDPMScheduler.beta_schedule: \"sigmoid\" is not one of"));
    CHECK(starts(error_of(R"({"_class_name": "DDPMScheduler", "num_train_timesteps": 1.5})"), "DDPMScheduler.num_train_timesteps: expected an integer"));
    CHECK(starts(error_of(R"({"_class_name": "DDPMScheduler", "num_train_timesteps": 1})"), "DDPMScheduler.num_train_timesteps: 1"));
    CHECK(starts(error_of(R"({"_class_name": "DDIMScheduler", "clip_sample": 1})"), "DDIMScheduler.clip_sample: expected true or false"));
    CHECK(starts(error_of(R"({"_class_name": "DDIMScheduler", "dynamic_thresholding_ratio": 2})"), "DDIMScheduler.dynamic_thresholding_ratio: 2"));
    CHECK(starts(error_of(R"({"_class_name": "DDIMScheduler", "beta_start": 0.5, "beta_end": 0.1})"), "DDIMScheduler: the training schedule"));
    CHECK(starts(error_of(R"({"_class_name": "DDIMInverseScheduler", "timestep_spacing": "linspace"})"), "DDIMInverseScheduler.timestep_spacing"));
    CHECK(starts(error_of(R"({"_class_name": "EulerDiscreteScheduler", "use_beta_sigmas": true})"), "EulerDiscreteScheduler.use_beta_sigmas: true is not supported"));
    CHECK(starts(error_of(R"({"_class_name": "EulerDiscreteScheduler", "interpolation_type": "log_linear"})"), "EulerDiscreteScheduler.interpolation_type"));
    CHECK(starts(error_of(R"({"_class_name": "EulerDiscreteScheduler", "timestep_type": "continuous"})"), "EulerDiscreteScheduler.timestep_type"));
    CHECK(starts(error_of(R"({"_class_name": "EulerDiscreteScheduler", "use_karras_sigmas": true, "use_exponential_sigmas": true})"),
                 "use_exponential_sigmas: use_karras_sigmas and use_exponential_sigmas exclude each other"));
    CHECK(starts(error_of(R"({"_class_name": "HeunDiscreteScheduler", "clip_sample": true})"), "HeunDiscreteScheduler.clip_sample: true is not supported"));
    CHECK(starts(error_of(R"({"_class_name": "KDPM2AncestralDiscreteScheduler", "prediction_type": "sample"})"),
                 "KDPM2AncestralDiscreteScheduler.prediction_type: \"sample\" is not one of"));
    CHECK(starts(error_of(R"({"_class_name": "KDPM2AncestralDiscreteScheduler", "use_karras_sigmas": true, "use_beta_sigmas": true})"),
                 "KDPM2AncestralDiscreteScheduler.use_beta_sigmas: only one of"));
    CHECK(starts(error_of(R"({"_class_name": "KDPM2DiscreteScheduler", "use_beta_sigmas": true})"), "KDPM2DiscreteScheduler.use_beta_sigmas: true is not supported"));
    CHECK(starts(error_of(R"({"_class_name": "TCDScheduler", "original_inference_steps": 0})"), "TCDScheduler.original_inference_steps: 0"));
    CHECK(starts(error_of(R"({"_class_name": "TCDScheduler", "timestep_spacing": "cosine"})"), "TCDScheduler.timestep_spacing"));
    CHECK(starts(error_of(R"({"_class_name": "EDMEulerScheduler", "prediction_type": "sample"})"), "EDMEulerScheduler.prediction_type: \"sample\" is not one of"));
    CHECK(starts(error_of(R"({"_class_name": "EDMEulerScheduler", "sigma_min": 2, "sigma_max": 1})"), "EDMEulerScheduler.sigma_max: must exceed sigma_min"));
    CHECK(starts(error_of(R"({"_class_name": "EDMEulerScheduler", "sigma_schedule": "linear"})"), "EDMEulerScheduler.sigma_schedule"));
    CHECK(starts(error_of(R"({"_class_name": "EDMDPMSolverMultistepScheduler", "algorithm_type": "dpmsolver"})"), "EDMDPMSolverMultistepScheduler.algorithm_type"));
    CHECK(starts(error_of(R"({"_class_name": "EDMDPMSolverMultistepScheduler", "algorithm_type": "deis"})"),
                 "EDMDPMSolverMultistepScheduler.final_sigmas_type: \"zero\" with algorithm_type \"deis\""));
    CHECK(starts(error_of(R"({"_class_name": "EDMDPMSolverMultistepScheduler", "algorithm_type": "sde-dpmsolver++", "solver_order": 3})"),
                 "EDMDPMSolverMultistepScheduler.solver_order: 3 with sde-dpmsolver++ is not supported"));
    CHECK(starts(error_of(R"({"_class_name": "DPMSolverMultistepScheduler", "variance_type": "learned_range"})"), "DPMSolverMultistepScheduler.variance_type"));
    CHECK(starts(error_of(R"({"_class_name": "DPMSolverMultistepScheduler", "use_flow_sigmas": true})"), "DPMSolverMultistepScheduler.use_flow_sigmas"));
    CHECK(starts(error_of(R"({"_class_name": "DPMSolverMultistepScheduler", "solver_order": 4})"), "DPMSolverMultistepScheduler.solver_order: 4"));
    CHECK(starts(error_of(R"({"_class_name": "DPMSolverMultistepScheduler", "algorithm_type": "deis"})"), "DPMSolverMultistepScheduler.algorithm_type"));
    CHECK(starts(error_of(R"({"_class_name": "DPMSolverMultistepScheduler", "rescale_betas_zero_snr": true})"), "rescale_betas_zero_snr: true is not supported"));
    CHECK(starts(error_of(R"({"_class_name": "DPMSolverMultistepScheduler", "use_lu_lambdas": true, "use_karras_sigmas": true})"), "use_lu_lambdas"));
    CHECK(starts(error_of(R"({"_class_name": "DPMSolverMultistepScheduler", "lambda_min_clipped": NaN})"), "lambda_min_clipped: expected a number, not NaN"));
    CHECK(starts(error_of(R"({"_class_name": "DPMSolverSinglestepScheduler", "algorithm_type": "sde-dpmsolver"})"), "DPMSolverSinglestepScheduler.algorithm_type"));
    CHECK(starts(error_of(R"({"_class_name": "DEISMultistepScheduler", "use_dynamic_shifting": true})"), "DEISMultistepScheduler.use_dynamic_shifting"));
    CHECK(starts(error_of(R"({"_class_name": "UniPCMultistepScheduler", "predict_x0": false})"), "UniPCMultistepScheduler.predict_x0"));
    CHECK(starts(error_of(R"({"_class_name": "UniPCMultistepScheduler", "rescale_betas_zero_snr": true})"),
                 "UniPCMultistepScheduler.rescale_betas_zero_snr: true is not supported"));
    CHECK(starts(error_of(R"({"_class_name": "UniPCMultistepScheduler", "solver_p": {}})"), "UniPCMultistepScheduler.solver_p"));
    CHECK(starts(error_of(R"({"_class_name": "UniPCMultistepScheduler", "thresholding": true})"), "UniPCMultistepScheduler.thresholding"));
    CHECK(starts(error_of(R"({"_class_name": "UniPCMultistepScheduler", "disable_corrector": [1, -2]})"), "UniPCMultistepScheduler.disable_corrector"));
    CHECK(starts(error_of(R"({"_class_name": "UniPCMultistepScheduler", "sigma_min": 0.1})"), "UniPCMultistepScheduler.sigma_min"));
    CHECK(starts(error_of(R"({"_class_name": "FlowMatchEulerDiscreteScheduler", "shift_terminal": 1.5})"), "FlowMatchEulerDiscreteScheduler.shift_terminal"));
    CHECK(starts(error_of(R"({"_class_name": "FlowMatchEulerDiscreteScheduler", "time_shift_type": "cubic"})"), "FlowMatchEulerDiscreteScheduler.time_shift_type"));
    CHECK(starts(error_of(R"({"_class_name": "FlowMatchEulerDiscreteScheduler", "invert_sigmas": true})"),
                 "FlowMatchEulerDiscreteScheduler.invert_sigmas: true is not supported"));
    CHECK(starts(error_of(R"({"_class_name": "FlowMatchEulerDiscreteScheduler", "use_karras_sigmas": true, "use_beta_sigmas": true})"), "only one of"));
    CHECK(starts(error_of(R"({"_class_name": "FlowMatchHeunDiscreteScheduler", "shift": -1})"), "FlowMatchHeunDiscreteScheduler.shift: -1"));
    // a run checks its step count and its mu (dynamic shifting needs one)
    std::vector<double> x(4, 0.1);
    gaussian_mixture data({1.0}, {0.0, 0.0}, {0.5});
    const auto ddim = scheduler_from_config(io::parse_json(R"({"_class_name": "DDIMScheduler"})"));
    auto dm = analytic_model(data, ddim.prediction_type, ddim.discrete_model_time());
    CHECK_THROWS_AS(ddim.sample(dm, batched(x, 2), 0), error);
    CHECK_THROWS_AS(ddim.sample(dm, batched(x, 2), 1001), error);
    // DDIMInverse's trailing list where numpy yields N + 1 timesteps (the first −1): T = 850, N = 44
    const auto inverse = scheduler_from_config(io::parse_json(R"({"_class_name": "DDIMInverseScheduler", "num_train_timesteps": 850,
                                                                  "timestep_spacing": "trailing"})"));
    auto im = analytic_model(data, inverse.prediction_type, inverse.discrete_model_time());
    CHECK_THROWS_WITH(inverse.sample(im, batched(x, 2), 44), Catch::Contains("num_inference_steps 44 is not supported"));
    CHECK_NOTHROW(inverse.sample(im, batched(x, 2), 43));
    // ... and the solver table's (T = 1200, N = 14: upstream's last timestep −1)
    const auto solver = scheduler_from_config(io::parse_json(R"({"_class_name": "DPMSolverMultistepScheduler", "num_train_timesteps": 1200,
                                                                 "timestep_spacing": "trailing"})"));
    auto sm = analytic_model(data, solver.prediction_type, solver.discrete_model_time());
    CHECK_THROWS_WITH(solver.sample(sm, batched(x, 2), 14), Catch::Contains("trailing spacing whose numpy.arange yields timestep -1"));
    const auto dyn = scheduler_from_config(io::parse_json(R"({"_class_name": "FlowMatchEulerDiscreteScheduler", "use_dynamic_shifting": true})"));
    auto fm = analytic_model(data, dyn.prediction_type, dyn.flow_model_time());
    CHECK_THROWS_AS(dyn.sample(fm, batched(x, 2), 5), error);
    CHECK_NOTHROW(dyn.sample(fm, batched(x, 2), 5, counter_noise{}, no_observer{}, dyn.mu_for(1024)));
}

TEST_CASE("spec.scheduler_config: conflicts name the field", "[diffusers_schedulers][scheduler_config][cli]") {
    const auto run = [](const std::string& text) { return diffuse::test::spec_error_of(text, golden_dir); };
    const auto specs = golden_specs();
    REQUIRE(!specs.empty());
    // the first DDIM case's file, with a plain mixture denoiser
    std::string file;
    for (const auto& p : specs)
        if (file.empty() && p.filename().string().find("_ddim.json") != std::string::npos) file = p.stem().string() + "_scheduler_config.json";
    REQUIRE(!file.empty());
    const std::string base = R"("scheduler_config": ")" + file + R"(", "shape": [2, 2], "num_inference_steps": 5, "denoiser": {"means": [0, 0], "variances": [1])";
    CHECK(run("{" + base + "}}") == "");
    CHECK(run(R"({"sampler": "ddim", )" + base + "}}").rfind("spec.sampler: conflicts with spec.scheduler_config", 0) == 0);
    CHECK(run(R"({"schedule": {}, )" + base + "}}").rfind("spec.schedule: conflicts", 0) == 0);
    CHECK(run(R"({"options": {"eta": 1}, )" + base + "}}").rfind("spec.options: conflicts", 0) == 0);
    CHECK(run(R"({"grid": {}, )" + base + "}}").rfind("spec.grid: conflicts", 0) == 0);
    CHECK(run("{" + base + R"(, "interpolation": "log_sigma"}})").rfind("spec.denoiser.interpolation: conflicts", 0) == 0);
    CHECK(run("{" + base + R"(, "prediction_type": "sample"}})").rfind("spec.denoiser.prediction_type: conflicts", 0) == 0);
    CHECK(run("{" + base + R"(, "sigma_data": 0.5}})").rfind("spec.denoiser.sigma_data: conflicts", 0) == 0);
    CHECK(run("{" + base + R"(, "prediction_type": "epsilon"}})") == "");  // repeating the file's is fine
    CHECK(run(R"({"mu": 1, )" + base + "}}").empty());
    CHECK(run(R"({"scheduler_config": "missing.json", "shape": [2, 2], "num_inference_steps": 5, "denoiser": {"means": [0, 0], "variances": [1]}})")
              .rfind("spec.scheduler_config: ", 0) == 0);
    CHECK(run(R"({"scheduler_config": "/etc/passwd", "shape": [2, 2], "num_inference_steps": 5, "denoiser": {"means": [0, 0], "variances": [1]}})")
              .rfind("spec.scheduler_config: ", 0) == 0);
    CHECK(run(R"({"scheduler_config": ")" + file + R"(", "shape": [2, 2], "num_inference_steps": 5000, "denoiser": {"means": [0, 0], "variances": [1]}})")
              .rfind("spec.scheduler_config: ", 0) == 0);
}
