// Golden parity: every spec under tests/golden/samplers/<part>/*.json runs through the code path of
// `diffuse sample` (apps/diffuse/runner.hpp) and is compared with the reference library's result stored
// beside it (spec "test": {"expected", "rtol", "atol", "reference"}). Specs come from tools/gen_sampler_golden*.py.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "../../apps/diffuse/runner.hpp"

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
    REQUIRE(specs.size() >= 40);
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
        ++compared;
    }
    CHECK(compared == specs.size());
}

TEST_CASE("spec errors name the field", "[samplers][s1][cli]") {
    auto run = [](const std::string& text) -> std::string {
        try {
            diffuse::cli::run_spec(diffuse::io::parse_json(text), ".");
        } catch (const diffuse::cli::spec_error& e) {
            return e.what();
        }
        return "";
    };
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
