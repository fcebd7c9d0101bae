// The flow-matching golden specs (tests/golden/samplers/flow/, from tools/gen_sampler_golden_flow.py) through
// the code path of `diffuse sample`, against diffusers' FlowMatchEuler/Heun results; and the flow spec fields'
// errors. tests/samplers/test_parity.cpp runs the same specs with every other family.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "../cli/spec_error.hpp"
#include "../../tools/diffuse/run_spec.hpp"

namespace fs = std::filesystem;

TEST_CASE("flow sampler parity with diffusers over the golden specs", "[flow][parity]") {
    std::vector<fs::path> specs;
    for (const auto& e : fs::directory_iterator(fs::path(DIFFUSE_GOLDEN_DIR) / "samplers" / "flow"))
        if (e.path().extension() == ".json") specs.push_back(e.path());
    std::sort(specs.begin(), specs.end());
    REQUIRE(specs.size() >= 50);
    std::size_t stochastic = 0, churn = 0, heun = 0, f32 = 0, dynamic = 0, linear = 0, seq_len = 0, spacing = 0, terminal = 0,
                user_sigmas = 0, file_grid = 0, other_prediction = 0;
    for (const auto& path : specs) {
        INFO("spec " << path.string());
        const auto root = diffuse::cli::load_json(path);
        const auto& test = root.at("test");
        const auto expected = diffuse::io::read_npy((path.parent_path() / test.at("expected").as_string()).string()).as<double>();
        const auto r = diffuse::cli::run_spec(root, path.parent_path());
        REQUIRE(r.x.size() == expected.size());
        const double atol = test.at("atol").as_number();
        double worst = 0;
        for (std::size_t i = 0; i < expected.size(); ++i) worst = std::max(worst, std::abs(r.x[i] - expected[i]));
        INFO("worst error " << worst << " (atol " << atol << ")");
        CHECK(worst <= atol);
        const auto& opts = root.at("options");
        stochastic += opts.find("stochastic_sampling") != nullptr;
        churn += opts.find("s_churn") != nullptr;
        heun += root.at("sampler").as_string() == "flow_heun";
        f32 += root.at("dtype").as_string() == "float32";
        const auto& g = root.at("grid");
        dynamic += g.find("use_dynamic_shifting") != nullptr;
        spacing += g.find("use_karras_sigmas") || g.find("use_exponential_sigmas") || g.find("use_beta_sigmas");
        terminal += g.find("shift_terminal") != nullptr;
        linear += g.find("time_shift_type") && g.at("time_shift_type").as_string() == "linear";
        seq_len += g.find("image_seq_len") != nullptr;
        user_sigmas += g.find("sigmas") != nullptr;
        file_grid += g.find("path") != nullptr;
        other_prediction += root.at("denoiser").at("prediction_type").as_string() != "flow_prediction";
    }
    CHECK(stochastic > 0);
    CHECK(churn > 0);
    CHECK(heun > 0);
    CHECK(f32 > 0);
    CHECK(f32 < specs.size());
    CHECK(dynamic > 0);
    CHECK(spacing > 0);
    CHECK(terminal > 0);
    CHECK(linear > 0);
    CHECK(seq_len > 0);
    CHECK(user_sigmas > 0);
    CHECK(file_grid > 0);
    CHECK(other_prediction > 0);
}

TEST_CASE("flow spec errors name the field", "[flow][cli]") {
    const auto run = [](const std::string& text) { return diffuse::test::spec_error_of(text); };
    const std::string den = R"("shape": [2, 2], "num_inference_steps": 4, "denoiser": {"prediction_type": "flow_prediction", "means": [0, 0], "variances": [1]})";
    CHECK(run(R"({"sampler": "flow_euler", )" + den + "}").empty());
    CHECK(run(R"({"sampler": "flow_heun", "options": {"s_churn": 1}, )" + den + "}").empty());
    CHECK(run(R"({"sampler": "flow_euler", "grid": {"use_dynamic_shifting": true}, )" + den + "}").rfind("spec.grid.mu:", 0) == 0);
    CHECK(run(R"({"sampler": "flow_euler", "grid": {"use_dynamic_shifting": true, "image_seq_len": 1024}, )" + den + "}").empty());
    CHECK(run(R"({"sampler": "flow_euler", "grid": {"shift": -1}, )" + den + "}").rfind("spec.grid.shift:", 0) == 0);
    CHECK(run(R"({"sampler": "flow_euler", "grid": {"use_karras_sigmas": true, "use_beta_sigmas": true}, )" + den + "}")
              .rfind("spec.grid: only one of", 0) == 0);
    CHECK(run(R"({"sampler": "flow_euler", "grid": {"sigmas": [1, 0.5]}, )" + den + "}").rfind("spec.grid: ", 0) == 0);
    CHECK(run(R"({"sampler": "flow_euler", "grid": {"type": "karras"}, )" + den + "}").rfind("spec.grid.type:", 0) == 0);
    CHECK(run(R"({"sampler": "flow_euler", "options": {"s_churn": 1}, )" + den + "}") == "spec.options.s_churn: unknown field");
    CHECK(run(R"({"sampler": "flow_heun", "options": {"stochastic_sampling": true}, )" + den + "}") ==
          "spec.options.stochastic_sampling: unknown field");
    // a flow network under a σ-space sampler (time "flow"), and an ε network from s = 1 (no x₀ at α = 0)
    CHECK(run(R"({"sampler": "euler", "grid": {"type": "karras", "sigma_min": 0.03, "sigma_max": 14.6},
                  "shape": [2, 2], "num_inference_steps": 4, "denoiser": {"time": "flow", "prediction_type": "flow_prediction", "means": [0, 0], "variances": [1]}})")
              .empty());
    CHECK(run(R"({"sampler": "flow_euler", "shape": [2, 2], "num_inference_steps": 4, "denoiser": {"time": "sigma", "means": [0, 0], "variances": [1]}})")
              .rfind("spec.options: ", 0) == 0);
}
