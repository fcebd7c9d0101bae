#pragma once
// diffusers model folders: a UNet2DModel saved with save_pretrained, and the scheduler it was trained with.
//
//   auto net = diffuse::io::load_unet2d("ddpm-cifar10-32");        // config.json + safetensors (single or sharded)
//   auto sched = diffuse::io::read_scheduler_config("ddpm-cifar10-32/scheduler_config.json");
//   auto schedule = diffuse::discrete_schedule::from_config(sched.schedule);
//
// A folder is untrusted input: config.json is read strictly (nn/unet2d_config.hpp), the weights through the
// validating safetensors reader (memory-mapped; F32, F16, BF16 and F64 converted to float), and every
// tensor's name and shape is checked against the architecture. All missing, unexpected and mis-shaped tensors
// are reported together in one diffuse::error. Legacy attention names (query, key, value, proj_attn, the
// projections possibly stored as [C, C, 1, 1]) are read as to_q, to_k, to_v, to_out.0.

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <utility>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "diffuse/core/error.hpp"
#include "diffuse/io/json.hpp"
#include "diffuse/io/safetensors.hpp"
#include "diffuse/nn/unet2d.hpp"
#include "diffuse/nn/unet2d_config.hpp"
#include "diffuse/process/parameterization.hpp"
#include "diffuse/schedules/beta.hpp"
#include "diffuse/schedules/timesteps.hpp"

namespace diffuse::io {

// The whole file as text (bounded: config files above 16 MB are rejected), through the safetensors reader's
// bounded file read.
[[nodiscard]] inline std::string read_text_file(const std::filesystem::path& p, std::size_t limit = 16u << 20) {
    const auto bytes = detail::read_file_bytes(p.string(), "read_text_file", limit);
    return std::string(bytes.begin(), bytes.end());
}

[[nodiscard]] inline nn::unet2d_config read_unet2d_config(const std::filesystem::path& config_json) {
    try {
        return nn::parse_unet2d_config(parse_json(read_text_file(config_json)));
    } catch (const diffuse::error& e) {
        diffuse::detail::fail("read_unet2d_config", config_json.string() + ": " + e.what());
    }
}

namespace detail {
// The stored name of an architecture tensor: itself, or its legacy attention name (query, key, value,
// proj_attn for to_q, to_k, to_v, to_out.0) when only that one is in the file.
[[nodiscard]] inline std::string stored_name(const safetensors_collection& st, const std::string& name) {
    if (st.contains(name) || name.find(".attentions.") == std::string::npos) return name;
    static const std::pair<std::string_view, std::string_view> legacy[] = {
        {".to_q.", ".query."}, {".to_k.", ".key."}, {".to_v.", ".value."}, {".to_out.0.", ".proj_attn."}};
    for (const auto& [now, old] : legacy) {
        const auto pos = name.rfind(now);
        if (pos == std::string::npos) continue;
        std::string alt = name.substr(0, pos) + std::string(old) + name.substr(pos + now.size());
        if (st.contains(alt)) return alt;
    }
    return name;
}

[[nodiscard]] inline std::string shape_text(const std::vector<std::size_t>& s) {
    std::string t = "[";
    for (std::size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
    return t + "]";
}

// Legacy projections may be stored as [C_out, C_in, 1, 1] (a 1×1 convolution) for a [C_out, C_in] linear.
[[nodiscard]] inline bool same_shape(const std::string& stored, const std::vector<std::uint64_t>& have,
                                     const std::vector<std::size_t>& want) {
    if (have.size() == want.size() && std::equal(have.begin(), have.end(), want.begin())) return true;
    const bool legacy = stored.ends_with(".query.weight") || stored.ends_with(".key.weight") ||
                        stored.ends_with(".value.weight") || stored.ends_with(".proj_attn.weight");
    return legacy && have.size() == 4 && want.size() == 2 && have[0] == want[0] && have[1] == want[1] && have[2] == 1 &&
           have[3] == 1;
}
}  // namespace detail

// Checks a weights file against an architecture's tensor list before anything is read or allocated: every
// missing, mis-shaped, non-floating-point and unexpected tensor is listed in one diffuse::error.
inline void check_tensors(const safetensors_collection& st, const std::vector<nn::unet2d::tensor_spec>& expected,
                          const std::string& what) {
    std::vector<std::string> problems;
    std::set<std::string> used;
    for (const auto& t : expected) {
        const std::string stored = detail::stored_name(st, t.name);
        const auto* e = st.find(stored);
        if (!e) {
            problems.push_back("missing tensor " + t.name + " " + detail::shape_text(t.shape));
            continue;
        }
        used.insert(stored);
        if (!detail::same_shape(stored, e->shape, t.shape))
            problems.push_back("tensor " + stored + " has shape " +
                               detail::shape_text(std::vector<std::size_t>(e->shape.begin(), e->shape.end())) +
                               ", the architecture needs " + detail::shape_text(t.shape));
        else if (e->dtype != "F32" && e->dtype != "F16" && e->dtype != "BF16" && e->dtype != "F64")
            problems.push_back("tensor " + stored + " has dtype " + e->dtype + ", not F32, F16, BF16 or F64");
    }
    for (const auto& n : st.names())
        if (!used.count(n)) problems.push_back("unexpected tensor " + n + " (not part of the architecture of config.json)");
    if (problems.empty()) return;
    std::string msg = what + ": " + std::to_string(problems.size()) + " tensor" + (problems.size() == 1 ? "" : "s") +
                      " disagree with the architecture:";
    for (std::size_t i = 0; i < problems.size() && i < 50; ++i) msg += "\n  " + problems[i];
    if (problems.size() > 50) msg += "\n  ... and " + std::to_string(problems.size() - 50) + " more";
    diffuse::detail::fail("load_unet2d", msg);
}

// A tensor_source over a safetensors file or sharded set already checked with check_tensors.
class safetensors_source final : public nn::tensor_source {
public:
    explicit safetensors_source(const safetensors_collection& st) : st_(st) {}

    std::vector<float> get(const std::string& name, const std::vector<std::size_t>& shape) override {
        std::size_t n = 1;
        for (auto s : shape) n *= s;
        std::vector<float> out(n);
        st_.read_into(detail::stored_name(st_, name), out);
        return out;
    }

private:
    const safetensors_collection& st_;
};

// Loads a UNet2DModel folder (config.json + diffusion_pytorch_model.safetensors or its sharded index). The
// weights are checked against the architecture before any is read, so memory stays proportional to the file.
[[nodiscard]] inline nn::unet2d load_unet2d(const std::filesystem::path& folder) {
    if (!std::filesystem::is_directory(folder))
        diffuse::detail::fail("load_unet2d", folder.string() + " is not a folder (expected a diffusers UNet2DModel folder)");
    const auto cfg = read_unet2d_config(folder / "config.json");
    const auto weights = open_safetensors(find_weights_file(folder));
    check_tensors(weights, nn::unet2d::expected_tensors(cfg), folder.string());
    safetensors_source src(weights);
    return nn::unet2d(cfg, src);
}

// scheduler_config.json: the training schedule and the sampling conventions a diffusers scheduler was
// saved with. Keys this library does not use are ignored (schedulers differ in their keys); the ones it
// uses are checked for type and range.
struct scheduler_config {
    std::string class_name;                  // e.g. "DDPMScheduler"
    discrete_schedule_config schedule;       // num_train_timesteps, beta_*, trained_betas, rescale_betas_zero_snr
    prediction prediction_type = prediction::epsilon;
    std::string variance_type = "fixed_small";
    bool clip_sample = true;
    double clip_sample_range = 1.0;
    bool thresholding = false;
    double dynamic_thresholding_ratio = 0.995, sample_max_value = 1.0;
    bool set_alpha_to_one = true;
    timestep_spacing spacing = timestep_spacing::leading;
    std::int64_t steps_offset = 0;
};

[[nodiscard]] inline scheduler_config parse_scheduler_config(const json_value& root) {
    constexpr std::string_view where = "scheduler config";
    if (!root.is_object()) diffuse::detail::fail(where, "scheduler_config.json is not a JSON object");
    auto bad = [&](const std::string& key, std::string_view what) { diffuse::detail::fail(where, key + ": " + std::string(what)); };
    scheduler_config s;
    for (const auto& member : root.as_object()) {
        const std::string& key = member.first;  // plain references: clang 14 cannot capture structured bindings
        const json_value& v = member.second;
        auto number = [&] {
            if (!v.is_number()) bad(key, "expected a number");
            return v.as_number();
        };
        auto boolean = [&] {
            if (!v.is_bool()) bad(key, "expected true or false");
            return v.as_bool();
        };
        auto string = [&]() -> const std::string& {
            if (!v.is_string()) bad(key, "expected a string");
            return v.as_string();
        };
        if (key == "_class_name") s.class_name = string();
        else if (key == "num_train_timesteps") {
            const double n = number();
            if (!(n >= 2 && n <= 1e6 && n == std::floor(n))) bad(key, "expected an integer in [2, 1000000]");
            s.schedule.num_train_timesteps = std::size_t(n);
        } else if (key == "beta_start") s.schedule.beta_start = number();
        else if (key == "beta_end") s.schedule.beta_end = number();
        else if (key == "beta_schedule") s.schedule.beta_schedule = string();
        else if (key == "trained_betas") {
            if (v.is_null()) continue;
            if (!v.is_array()) bad(key, "expected null or a list of numbers");
            std::vector<double> b;
            for (const auto& e : v.as_array()) {
                if (!e.is_number()) bad(key, "expected null or a list of numbers");
                b.push_back(e.as_number());
            }
            s.schedule.trained_betas = std::move(b);
        } else if (key == "rescale_betas_zero_snr") s.schedule.rescale_betas_zero_snr = boolean();
        else if (key == "prediction_type") {
            try {
                s.prediction_type = parse_prediction(string());
            } catch (const diffuse::error& e) {
                bad(key, e.what());
            }
        } else if (key == "variance_type") {
            if (!v.is_null()) s.variance_type = string();
        } else if (key == "clip_sample") s.clip_sample = boolean();
        else if (key == "clip_sample_range") s.clip_sample_range = number();
        else if (key == "thresholding") s.thresholding = boolean();
        else if (key == "dynamic_thresholding_ratio") s.dynamic_thresholding_ratio = number();
        else if (key == "sample_max_value") s.sample_max_value = number();
        else if (key == "set_alpha_to_one") s.set_alpha_to_one = boolean();
        else if (key == "timestep_spacing") {
            try {
                s.spacing = parse_timestep_spacing(string());
            } catch (const diffuse::error& e) {
                bad(key, e.what());
            }
        } else if (key == "steps_offset") {
            const double n = number();
            if (!(n >= 0 && n <= 1e6 && n == std::floor(n))) bad(key, "expected a non-negative integer");
            s.steps_offset = std::int64_t(n);
        }
    }
    // The schedule itself is validated by discrete_schedule::from_config when it is built.
    return s;
}

[[nodiscard]] inline scheduler_config read_scheduler_config(const std::filesystem::path& p) {
    try {
        return parse_scheduler_config(parse_json(read_text_file(p)));
    } catch (const diffuse::error& e) {
        diffuse::detail::fail("read_scheduler_config", p.string() + ": " + e.what());
    }
}

}  // namespace diffuse::io
