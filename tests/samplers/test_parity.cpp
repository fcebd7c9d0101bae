// Golden parity: every spec under tests/golden/samplers/<family>/*.json runs through the code path of
// `diffuse sample` (tools/diffuse/runner.hpp) and is compared with the reference library's result stored
// beside it (spec "test": {"expected", "rtol", "atol", "reference", optional "nfe": the reference's number of
// model calls}). Specs come from tools/gen_sampler_golden_*.py: discrete/ (DDPM, DDIM, DDIM inversion vs diffusers),
// sigma/ (σ-space samplers vs k-diffusion and diffusers), score_sde/ (score_sde samplers vs its re-implementation),
// schedule_options/ (configurations drawn over the schedule options, zero terminal SNR included, vs diffusers and
// k-diffusion), edm/ (diffusers' EDM schedulers), discrete_extras/ (KDPM2 ancestral, TCD and the DDPM / DDIM
// N + 1 trailing steps vs diffusers).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "../cli/spec_error.hpp"
#include "../../tools/diffuse/run_spec.hpp"

namespace fs = std::filesystem;

namespace {
std::vector<fs::path> golden_specs() {
    std::vector<fs::path> out;
    const fs::path root = fs::path(DIFFUSE_GOLDEN_DIR) / "samplers";
    if (!fs::exists(root)) return out;
    for (const auto& e : fs::recursive_directory_iterator(root))
        if (e.path().extension() == ".json" && e.path().parent_path().filename() != "cli") out.push_back(e.path());
    std::sort(out.begin(), out.end());
    return out;
}
}  // namespace

TEST_CASE("sampler parity with the reference libraries over the golden specs", "[samplers][parity]") {
    const auto specs = golden_specs();
    REQUIRE(specs.size() >= 250);
    std::size_t compared = 0;
    for (const auto& path : specs) {
        INFO("spec " << path.string());
        const auto root = diffuse::cli::load_json(path);
        const auto* test = root.find("test");
        REQUIRE(test != nullptr);
        const auto expected = diffuse::io::read_npy((path.parent_path() / test->at("expected").as_string()).string()).as<double>();
        const double rtol = test->at("rtol").as_number(), atol = test->at("atol").as_number();
        const auto r = diffuse::cli::run_spec(root, path.parent_path());
        REQUIRE(r.x.size() == expected.size());
        double worst = 0;
        std::size_t at = 0;
        for (std::size_t i = 0; i < expected.size(); ++i) {
            const double excess = std::abs(r.x[i] - expected[i]) - (atol + rtol * std::abs(expected[i]));
            if (i == 0 || excess > worst) {
                worst = excess;
                at = i;
            }
        }
        INFO("worst element " << at << ": got " << r.x[at] << ", reference " << expected[at] << " (rtol " << rtol
                              << ", atol " << atol << ")");
        CHECK(worst <= 0);
        if (const auto* nfe = test->find("nfe")) {
            REQUIRE(r.nfe.has_value());
            CHECK(double(*r.nfe) == nfe->as_number());
        }
        ++compared;
    }
    CHECK(compared == specs.size());
}

TEST_CASE("spec errors name the field", "[samplers][discrete][cli]") {
    const auto run = [](const std::string& text) { return diffuse::test::spec_error_of(text); };
    const std::string base = R"("shape": [2, 2], "num_inference_steps": 3, "denoiser": {"means": [0, 0], "variances": [1]})";
    CHECK(run(R"({"sampler": "ddim", )" + base + "}").empty());
    CHECK(run(R"({"sampler": "nope", )" + base + "}").rfind("spec.sampler: \"nope\" is not one of {ddpm, ddim", 0) == 0);
    CHECK(run(R"({"sampler": "ddim", "seed": -1, )" + base + "}").rfind("spec.seed:", 0) == 0);
    CHECK(run(R"({"sampler": "ddim", "options": {"eta": "x"}, )" + base + "}") == "spec.options.eta: expected a number");
    CHECK(run(R"({"sampler": "ddim", "options": {"etaa": 1}, )" + base + "}") == "spec.options.etaa: unknown field");
    CHECK(run(R"({"sampler": "ddim", "colour": 1, )" + base + "}") == "spec.colour: unknown field");
    CHECK(run(R"({"sampler": "ddpm", "schedule": {"timestep_spacing": "odd"}, )" + base + "}").rfind(
              "spec.schedule.timestep_spacing:", 0) == 0);
    CHECK(run(R"({"sampler": "ddpm", "shape": [2, 3], "num_inference_steps": 3, "denoiser": {"means": [0, 0], "variances": [1]}})")
              .rfind("spec.denoiser.means:", 0) == 0);
    CHECK(run(R"({"sampler": "ddpm", "shape": [2, 2], "num_inference_steps": 3000, "denoiser": {"means": [0, 0], "variances": [1]}})")
              .rfind("spec.num_inference_steps:", 0) == 0);
    CHECK(run(R"({"sampler": "ddim", "step_noise": "missing.npy", )" + base + "}").rfind("spec.step_noise:", 0) == 0);
    CHECK(run(R"({"shape": [2, 2]})") == "spec.sampler: missing (required)");
}

TEST_CASE("spec errors name the field: sigma-space and score_sde samplers", "[samplers][cli]") {
    const auto run = [](const std::string& text) { return diffuse::test::spec_error_of(text); };
    const std::string den = R"("shape": [2, 2], "num_inference_steps": 4, "denoiser": {"means": [0, 0], "variances": [1])";
    const std::string sig = R"("shape": [2, 2], "num_inference_steps": 4, "denoiser": {"time": "sigma", "means": [0, 0], "variances": [1])";
    const std::string sden = R"("shape": [2, 2], "num_inference_steps": 25, "denoiser": {"means": [0, 0], "variances": [1])";
    const std::string karras = R"("grid": {"type": "karras", "sigma_min": 0.03, "sigma_max": 14.6})";
    // valid specs of each family run
    CHECK(run(R"({"sampler": "euler", )" + den + "}}").empty());
    CHECK(run(R"({"sampler": "dpmpp_3m_sde", )" + karras + ", " + sig + "}}").empty());
    CHECK(run(R"({"sampler": "pf_ode_rk45", )" + sden + R"(}, "score_unused": 0})") == "spec.score_unused: unknown field");
    CHECK(run(R"({"sampler": "pc", "sde": {"type": "ve"}, )" + sden + "}}").empty());
    // grid
    CHECK(run(R"({"sampler": "euler", "grid": {"type": "karras", "sigma_min": 0.03}, )" + sig + "}}") ==
          "spec.grid.sigma_max: missing (required)");
    CHECK(run(R"({"sampler": "euler", "grid": {"type": "cosine"}, )" + sig + "}}").rfind("spec.grid.type: \"cosine\" is not one of", 0) == 0);
    CHECK(run(R"({"sampler": "euler", "grid": {"type": "karras", "sigma_min": 2, "sigma_max": 1}, )" + sig + "}}").rfind("spec.grid: ", 0) == 0);
    CHECK(run(R"({"sampler": "euler", "grid": {"type": "exponential", "sigma_min": 0.1, "sigma_max": 5, "rho": 3}, )" + sig + "}}") ==
          "spec.grid.rho: unknown field");
    CHECK(run(R"({"sampler": "ddim", )" + karras + ", " + den + "}}").rfind("spec.grid: the discrete samplers", 0) == 0);
    CHECK(run(R"({"sampler": "euler", "grid": {"type": "file", "path": "missing.npy"}, )" + sig + "}}").rfind("spec.grid.path:", 0) == 0);
    // options of the σ family
    CHECK(run(R"({"sampler": "euler", "options": {"s_churn": -1}, )" + sig + "}}").rfind("spec.options.s_churn: -1 is outside", 0) == 0);
    CHECK(run(R"({"sampler": "euler", "options": {"eta": 1}, )" + sig + "}}") == "spec.options.eta: unknown field");
    CHECK(run(R"({"sampler": "dpmpp_2m", "options": {"solver_type": "rk4"}, )" + sig + "}}").rfind("spec.options.solver_type:", 0) == 0);
    CHECK(run(R"({"sampler": "unipc", "options": {"solver_type": "bh3"}, )" + sig + "}}").rfind("spec.options.solver_type:", 0) == 0);
    CHECK(run(R"({"sampler": "lms", "options": {"order": 1.5}, )" + sig + "}}") ==
          "spec.options.order: expected a non-negative integer");
    CHECK(run(R"({"sampler": "dpmpp_sde", "options": {"r": 2}, )" + sig + "}}").rfind("spec.options.r: 2 is outside", 0) == 0);
    CHECK(run(R"({"sampler": "dpmpp_sde", "options": {"noise_sampler": "pink"}, )" + sig + "}}").rfind("spec.options.noise_sampler:", 0) == 0);
    // denoiser time
    CHECK(run(R"({"sampler": "euler", "denoiser": {"time": "sde", "means": [0, 0], "variances": [1]}, "shape": [2, 2], "num_inference_steps": 4})")
              .rfind("spec.denoiser.time:", 0) == 0);
    CHECK(run(R"({"sampler": "pc", "denoiser": {"time": "sigma", "means": [0, 0], "variances": [1]}, "shape": [2, 2], "num_inference_steps": 4})")
              .rfind("spec.denoiser.time:", 0) == 0);
    CHECK(run(R"({"sampler": "euler", "denoiser": {"time": "sigma", "timestep_table": "t.npy", "means": [0, 0], "variances": [1]}, "shape": [2, 2], "num_inference_steps": 4})")
              .rfind("spec.denoiser.timestep_table:", 0) == 0);
    // SDE block and options
    CHECK(run(R"({"sampler": "pc", "sde": {"type": "vp", "sigma_max": 50}, )" + sden + "}}") == "spec.sde.sigma_max: unknown field");
    CHECK(run(R"({"sampler": "pc", "sde": {"type": "vp", "beta_min": -1}, )" + sden + "}}").rfind("spec.sde: ", 0) == 0);
    CHECK(run(R"({"sampler": "euler", "sde": {"type": "vp"}, )" + sig + "}}").rfind("spec.sde: only the score_sde samplers", 0) == 0);
    CHECK(run(R"({"sampler": "pc", "options": {"corrector": "hmc"}, )" + sden + "}}").rfind("spec.options.corrector:", 0) == 0);
    CHECK(run(R"({"sampler": "pc", "grid": {"eps": 2}, )" + sden + "}}").rfind("spec.grid.eps: 2 is outside", 0) == 0);
    CHECK(run(R"({"sampler": "pf_ode_rk45", "options": {"rtol": "tight"}, )" + sden + "}}") == "spec.options.rtol: expected a number");
    CHECK(run(R"({"sampler": "euler_maruyama", "options": {"snr": 0.1}, )" + sden + "}}") == "spec.options.snr: unknown field");
}

TEST_CASE("spec errors name the field: EDM samplers", "[samplers][cli][edm]") {
    const auto run = [](const std::string& text) { return diffuse::test::spec_error_of(text); };
    const std::string den = R"("shape": [2, 2], "num_inference_steps": 6, "denoiser": {"means": [0, 0], "variances": [1])";
    CHECK(run(R"({"sampler": "edm_euler", "options": {"s_churn": 3}, )" + den + "}}").empty());
    CHECK(run(R"({"sampler": "edm_dpm_solver_multistep", "options": {"solver_order": 3, "sigma_schedule": "exponential"}, )" + den + "}}").empty());
    CHECK(run(R"({"sampler": "edm_euler", "denoiser": {"time": "sigma", "prediction_type": "sample", "means": [0, 0], "variances": [1]}, "shape": [2, 2], "num_inference_steps": 4})")
              .empty());  // any network drives the EDM samplers
    CHECK(run(R"({"sampler": "edm_euler", "grid": {"type": "karras", "sigma_min": 0.03, "sigma_max": 14.6}, )" + den + "}}")
              .rfind("spec.grid: the EDM samplers", 0) == 0);
    CHECK(run(R"({"sampler": "edm_euler", "options": {"sigma_min": 2, "sigma_max": 1}, )" + den + "}}").rfind("spec.options.sigma_max:", 0) == 0);
    CHECK(run(R"({"sampler": "edm_euler", "options": {"sigma_schedule": "linear"}, )" + den + "}}").rfind("spec.options.sigma_schedule:", 0) == 0);
    CHECK(run(R"({"sampler": "edm_euler", "options": {"final_sigmas_type": "one"}, )" + den + "}}").rfind("spec.options.final_sigmas_type:", 0) == 0);
    CHECK(run(R"({"sampler": "edm_euler", "options": {"solver_order": 2}, )" + den + "}}") == "spec.options.solver_order: unknown field");
    CHECK(run(R"({"sampler": "edm_dpm_solver_multistep", "options": {"algorithm_type": "dpmsolver"}, )" + den + "}}")
              .rfind("spec.options.algorithm_type:", 0) == 0);
    CHECK(run(R"({"sampler": "edm_dpm_solver_multistep", "options": {"algorithm_type": "sde-dpmsolver++", "solver_order": 3}, )" + den + "}}")
              .rfind("spec.options.solver_order:", 0) == 0);
    CHECK(run(R"({"sampler": "edm_euler", "denoiser": {"prediction_type": "sample", "means": [0, 0], "variances": [1]}, "shape": [2, 2], "num_inference_steps": 4})")
              .rfind("spec.denoiser.prediction_type:", 0) == 0);
    CHECK(run(R"({"sampler": "euler", "denoiser": {"time": "sigma", "sigma_data": 1, "means": [0, 0], "variances": [1]}, "shape": [2, 2], "num_inference_steps": 4})")
              .rfind("spec.denoiser.sigma_data:", 0) == 0);
    CHECK(run(R"({"sampler": "edm_euler", "denoiser": {"sigma_data": 0, "means": [0, 0], "variances": [1]}, "shape": [2, 2], "num_inference_steps": 4})")
              .rfind("spec.denoiser.sigma_data:", 0) == 0);
}

TEST_CASE("spec runner: trajectory, Brownian tree, prior and per-sample grids", "[samplers][cli]") {
    const std::string mix = R"("denoiser": {"time": "sigma", "prediction_type": "sample", "weights": [0.4, 0.6], "means": [[1, -0.5], [-1, 0.8]], "variances": [0.09, 0.25]})";
    auto spec = [&](const std::string& body) { return diffuse::io::parse_json("{" + body + ", " + mix + "}"); };
    const std::string head = R"("sampler": "dpmpp_2m_sde", "shape": [3, 2], "num_inference_steps": 6, "grid": {"type": "karras", "sigma_min": 0.03, "sigma_max": 14.6})";
    const auto a = diffuse::cli::run_spec(spec(head + R"(, "seed": 1)"), ".", true);
    const auto b = diffuse::cli::run_spec(spec(head + R"(, "seed": 1)"), ".", true);
    const auto c = diffuse::cli::run_spec(spec(head + R"(, "seed": 2)"), ".", true);
    const auto d = diffuse::cli::run_spec(spec(head + R"(, "seed": 1, "options": {"noise_sampler": "counter"})"), ".", true);
    CHECK(a.recorded_steps == 6);
    CHECK(a.trajectory.size() == 6 * 6);
    CHECK(std::equal(a.trajectory.end() - 6, a.trajectory.end(), a.x.begin()));
    CHECK(a.x == b.x);  // same seed, same bits
    CHECK(a.x != c.x);
    CHECK(a.x != d.x);  // the Brownian tree is the default noise of the SDE solvers, not the counter stream
    // score_sde: the prior comes from the seed; one model call per RK45 stage is reported
    const std::string sde = R"("shape": [3, 2], "num_inference_steps": 1, "sde": {"type": "subvp", "N": 25}, "grid": {"type": "linspace", "start": 1, "end": 0.001},
        "denoiser": {"time": "sde", "prediction_type": "score", "weights": [0.4, 0.6], "means": [[1, -0.5], [-1, 0.8]], "variances": [0.09, 0.25]})";
    const auto r = diffuse::cli::run_spec(diffuse::io::parse_json(R"({"sampler": "pf_ode_rk45", "seed": 4, )" + sde + "}"), ".");
    REQUIRE(r.nfe.has_value());
    CHECK(*r.nfe > 6);
    for (double v : r.x) CHECK(std::isfinite(v));
}

