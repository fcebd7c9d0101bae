// The one compiled copy of the sampling-spec runner: run_spec.hpp declares it, runner.hpp holds the families.
#include "run_spec.hpp"

#include <type_traits>

#include "runner.hpp"

namespace diffuse::cli {

spec_run run_spec(const io::json_value& root, const std::filesystem::path& dir, bool always_record,
                  const std::function<void(std::size_t, std::size_t)>& progress, const run_settings& settings) {
    const bool trajectory_in_memory = always_record || (root.is_object() && root.find("trajectory") && !settings.stream_trajectory);
    check_run_limits(root, settings.limits, trajectory_in_memory);
    const spec_files files{dir, settings.allow_paths_outside_spec, settings.limits.max_memory / 4};
    fields s(&root, "spec");
    const auto dtype = s.choice("dtype", {"float32", "float64"}, "float64");
    spec_run out;
    out.dtype = dtype;
    auto take = [&](auto res) {
        out.x.assign(res.x.begin(), res.x.end());
        out.trajectory.assign(res.trajectory.begin(), res.trajectory.end());
        out.shape = res.shape;
        out.recorded_steps = res.recorded_steps;
        out.nfe = res.nfe;
        if constexpr (std::is_same_v<typename decltype(res.x)::value_type, float>) out.trajectory_file_f32 = std::move(res.trajectory_file);
        else out.trajectory_file_f64 = std::move(res.trajectory_file);
    };
    if (dtype == "float32") take(detail::run_spec_typed<float>(s, files, always_record, settings.stream_trajectory, progress));
    else take(detail::run_spec_typed<double>(s, files, always_record, settings.stream_trajectory, progress));
    return out;
}

}  // namespace diffuse::cli
