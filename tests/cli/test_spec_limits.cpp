// The CLI's run limits (tools/diffuse/spec_limits.hpp) and spec paths (spec_files.hpp): the estimate is the
// documented formula, exactly (checked at the limit and one below it, over configurations drawn at random),
// it names the field asking for the most, and paths leave the spec's folder only when allowed.
#include <catch2/catch.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "../../tools/diffuse/spec_files.hpp"
#include "../../tools/diffuse/spec_limits.hpp"
#include "diffuse/io/json.hpp"

namespace fs = std::filesystem;
using diffuse::cli::check_run_limits;
using diffuse::cli::parse_byte_size;
using diffuse::cli::run_limits;
using diffuse::cli::spec_error;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

TEST_CASE("parse_byte_size: plain bytes and binary suffixes, nothing else", "[cli][limits]") {
    CHECK(parse_byte_size("0") == 0u);
    CHECK(parse_byte_size("12") == 12u);
    CHECK(parse_byte_size("64KiB") == 64u << 10);
    CHECK(parse_byte_size("512MiB") == 512u << 20);
    CHECK(parse_byte_size("4GiB") == std::uint64_t{4} << 30);
    CHECK(parse_byte_size("8388608TiB") == std::uint64_t{1} << 63);
    for (const char* bad : {"", "GiB", "4GB", "4 GiB", "-1", "1.5GiB", "0x10", "8388609TiB", "99999999999999999999", "4gib"})
        CHECK_FALSE(parse_byte_size(bad).has_value());
}

namespace {
struct drawn_spec {
    std::string json;
    double memory = 0, work = 0, output = 0;
    std::string memory_field, work_field;
};

// A spec drawn over the estimate's options (sampler and its calls per step, dtype, shape, steps, sde.N,
// grid file, trajectory, mixture components, train timesteps) with the documented estimate computed here.
drawn_spec draw(std::mt19937_64& rng, bool trajectory_in_memory) {
    auto pick = [&](std::uint64_t lo, std::uint64_t hi) { return std::uniform_int_distribution<std::uint64_t>(lo, hi)(rng); };
    struct sampler_calls {
        const char* name;
        int calls;  // -1: 1 + n_steps, -2: n_steps_each, -3: 6 max_attempts + 1
    };
    static const sampler_calls samplers[] = {{"euler", 1}, {"heun", 2}, {"dpm_2", 2}, {"dpmpp_2s_ancestral", 2}, {"dpmpp_sde", 2},
                                             {"lms", 1}, {"ddim", 1}, {"pf_ode_heun", 2}, {"pc", -1}, {"annealed_langevin", -2},
                                             {"pf_ode_rk45", -3}, {"edm_euler", 1}, {"edm_dpm_solver_multistep", 1}, {"some_new_sampler", 2}};
    const auto& s = samplers[pick(0, std::size(samplers) - 1)];
    drawn_spec d;
    const bool f32 = pick(0, 1) == 1;
    const double elem = f32 ? 4 : 8;
    const double batch = double(pick(1, 8)), c = double(pick(1, 4)), h = double(pick(1, 64));
    const double total = batch * c * h;
    const double n = double(pick(1, 5000));
    double steps = n;
    std::string steps_field = "spec.num_inference_steps";
    std::string j = "{\"sampler\": \"" + std::string(s.name) + "\", \"shape\": [" + std::to_string(int(batch)) + ", " +
                    std::to_string(int(c)) + ", " + std::to_string(int(h)) + "], \"num_inference_steps\": " + std::to_string(int(n));
    if (f32) j += ", \"dtype\": \"float32\"";
    const bool grid_file = pick(0, 3) == 0, with_n = pick(0, 1) == 1;
    if (grid_file) j += ", \"grid\": {\"type\": \"file\", \"path\": \"g.npy\"}";
    if (with_n) {
        const double N = double(pick(1, 5000));
        j += ", \"sde\": {\"N\": " + std::to_string(int(N)) + "}";
        if (!grid_file) {
            steps = N;
            steps_field = "spec.sde.N";
        }
    }
    double calls = s.calls;
    std::string calls_field;
    if (s.calls < 0) {
        const double k = double(pick(1, 50));
        const char* key = s.calls == -1 ? "n_steps" : s.calls == -2 ? "n_steps_each" : "max_attempts";
        j += std::string(", \"options\": {\"") + key + "\": " + std::to_string(int(k)) + "}";
        calls = s.calls == -1 ? 1 + k : s.calls == -2 ? k : 6 * k + 1;
        calls_field = std::string("spec.options.") + key;
    }
    const double components = double(pick(1, 4));
    const bool guidance = pick(0, 3) == 0;
    j += ", \"denoiser\": {\"weights\": [";
    for (int i = 0; i < int(components); ++i) j += (i ? ", " : "") + std::string("1");
    j += "]";
    if (guidance) j += ", \"guidance_scale\": 2";
    j += "}";
    const double train = double(pick(2, 3000));
    j += ", \"schedule\": {\"num_train_timesteps\": " + std::to_string(int(train)) + "}";
    const bool trajectory = pick(0, 1) == 1;
    if (trajectory) j += ", \"trajectory\": \"t.npy\"";
    j += "}";
    d.json = j;
    const double rows = grid_file ? batch : 1;
    const double state = 16 * total * elem, grid = 4 * (steps + 1) * rows * 8, tables = 8 * train * 8;
    const double traj = trajectory_in_memory ? steps * total * (elem + 8) : 0;
    d.memory = state + grid + tables + traj;
    const double largest = std::max({state, grid, tables, traj});
    d.memory_field = largest == state ? "spec.shape" : largest == grid ? steps_field : largest == tables ? "spec.schedule.num_train_timesteps" : "spec.trajectory";
    d.work = steps * calls * total * components * (guidance ? 2 : 1);
    d.work_field = calls > steps && !calls_field.empty() ? calls_field : steps_field;
    d.output = (trajectory && !trajectory_in_memory ? steps * total * elem : 0) + total * elem;
    return d;
}
}  // namespace

TEST_CASE("check_run_limits: the documented estimate, exactly, at the limit and one below", "[cli][limits]") {
    std::mt19937_64 rng(20261202);
    const run_limits open{~std::uint64_t{0} >> 1, ~std::uint64_t{0} >> 1, ~std::uint64_t{0} >> 1};
    for (int i = 0; i < 300; ++i) {
        const bool in_memory = i % 2 == 0;
        const auto d = draw(rng, in_memory);
        INFO(d.json);
        const auto root = diffuse::io::parse_json(d.json);
        run_limits at = open;
        at.max_memory = std::uint64_t(d.memory);
        at.max_work = std::uint64_t(d.work);
        at.max_output = std::uint64_t(d.output);
        CHECK_NOTHROW(check_run_limits(root, at, in_memory));
        run_limits below = open;
        below.max_memory = std::uint64_t(d.memory) - 1;
        CHECK_THROWS_WITH(check_run_limits(root, below, in_memory), StartsWith(d.memory_field + ": the run needs about") &&
                                                                        Contains("of memory") && Contains("--max-memory"));
        below = open;
        below.max_work = std::uint64_t(d.work) - 1;
        CHECK_THROWS_WITH(check_run_limits(root, below, in_memory), StartsWith(d.work_field + ": the run needs about") &&
                                                                        Contains("--max-work"));
        below = open;
        below.max_output = std::uint64_t(d.output) - 1;
        CHECK_THROWS_WITH(check_run_limits(root, below, in_memory), Contains("of output") && Contains("--max-output"));
    }
}

TEST_CASE("check_run_limits leaves values the readers refuse to them", "[cli][limits]") {
    const run_limits tiny{1, 1, 1};
    for (const char* spec : {R"({"shape": [2, 0], "num_inference_steps": 10})", R"({"shape": [2], "num_inference_steps": 10})",
                             R"({"shape": [2, 3], "num_inference_steps": 1e9})", R"({"shape": [2, 3]})", R"([1, 2])",
                             R"({"shape": [2, 3.5], "num_inference_steps": 10})", R"({"shape": "x", "num_inference_steps": 10})"})
        CHECK_NOTHROW(check_run_limits(diffuse::io::parse_json(spec), tiny, true));
}

TEST_CASE("spec_files: paths stay in the spec's folder unless allowed", "[cli][paths]") {
    const fs::path base = fs::temp_directory_path() / ("diffuse_spec_files_" + std::to_string(std::random_device{}()));
    const fs::path spec_dir = base / "spec", outside = base / "outside";
    fs::create_directories(spec_dir / "sub");
    fs::create_directories(outside);
    std::error_code ec;
    fs::create_directory_symlink(outside, spec_dir / "link", ec);
    const diffuse::cli::spec_files files{spec_dir, false, 1 << 20};
    CHECK(files.resolve("x.npy", "spec.f") == spec_dir / "x.npy");
    CHECK(files.resolve("sub/../x.npy", "spec.f") == spec_dir / "x.npy");
    CHECK(files.resolve("sub/x.npy", "spec.f") == spec_dir / "sub" / "x.npy");
    CHECK(files.resolve("missing/../x.npy", "spec.f") == spec_dir / "x.npy");
    CHECK_THROWS_WITH(files.resolve("../outside/x.npy", "spec.f"), StartsWith("spec.f: \"../outside/x.npy\" leaves the spec's folder"));
    CHECK_THROWS_WITH(files.resolve("sub/../../x.npy", "spec.f"), Contains("leaves the spec's folder"));
    CHECK_THROWS_WITH(files.resolve("..", "spec.f"), Contains("leaves the spec's folder"));
    CHECK_THROWS_WITH(files.resolve((outside / "x.npy").string(), "spec.f"), Contains("is an absolute path"));
    CHECK_THROWS_WITH(files.resolve("", "spec.f"), Contains("an empty path"));
    if (!ec) CHECK_THROWS_WITH(files.resolve("link/x.npy", "spec.f"), Contains("through a symbolic link"));
    const diffuse::cli::spec_files open{spec_dir, true, 1 << 20};
    CHECK(open.resolve("../outside/x.npy", "spec.f") == spec_dir / "../outside/x.npy");
    CHECK(open.resolve((outside / "x.npy").string(), "spec.f") == outside / "x.npy");
    // a spec in the working folder (an empty folder name) resolves the same way
    const diffuse::cli::spec_files here{"", false, 1 << 20};
    CHECK(here.resolve("x.npy", "spec.f") == fs::path("x.npy"));
    CHECK_THROWS(here.resolve("../x.npy", "spec.f"));
    fs::remove_all(base, ec);
}
