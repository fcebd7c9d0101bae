#pragma once
// The sampling-spec runner's interface: what `diffuse sample`, the golden parity tests, the spec fuzzer and the
// image demo call. The runner itself (runner.hpp: every sampler of the CLI for float and double) is compiled
// once, into the diffuse_cli_runner library (run_spec.cpp), so the programs that use it do not each
// instantiate it again. The spec format is documented in docs/cli.md.

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "diffuse/core/error.hpp"
#include "diffuse/io/file.hpp"
#include "diffuse/io/json.hpp"
#include "diffuse/io/npy.hpp"
#include "spec_fields.hpp"
#include "spec_limits.hpp"

namespace diffuse::cli {

// The spec file at p, read through the bounded JSON reader (at most max_bytes: /dev/zero or a huge file
// fails fast); a folder, a missing file or invalid JSON is a spec_error naming the file.
inline io::json_value load_json(const std::filesystem::path& p, std::uint64_t max_bytes = std::uint64_t{64} << 20) {
    std::error_code ec;
    if (std::filesystem::is_directory(p, ec)) throw spec_error(p.string() + ": is a directory, not a spec file");
    std::vector<unsigned char> bytes;
    try {
        bytes = io::read_file(p.string(), max_bytes, "spec");
    } catch (const diffuse::error& e) {
        throw spec_error(p.string() + ": cannot read the spec: " + std::string(diffuse::detail::error_text(e)));
    }
    try {
        io::json_limits lim;
        lim.max_size = std::size_t(max_bytes);
        return io::parse_json(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), lim);
    } catch (const std::exception& e) {
        throw spec_error(p.string() + ": not valid JSON: " + e.what());
    }
}

// How a spec is run beyond what it says: the limits on its memory, work and output (spec_limits.hpp), whether
// the files it names may lie outside its folder (spec_files.hpp), and whether the trajectory streams to its
// file (spec_run::trajectory_file*, published by the caller) instead of being held in memory.
struct run_settings {
    run_limits limits;
    bool allow_paths_outside_spec = false;
    bool stream_trajectory = false;
};

// Runs a spec in double (dtype "float64", the default) or float ("float32"); results are returned in double.
// A streamed trajectory (run_settings::stream_trajectory) is in trajectory_file_f32 or _f64, written and
// synced but not yet in place: publish_trajectory() renames it onto spec.trajectory.
struct spec_run {
    std::vector<double> x, trajectory;
    std::vector<std::size_t> shape;
    std::size_t recorded_steps = 0;
    std::string dtype;
    std::optional<std::size_t> nfe;
    std::unique_ptr<io::npy_writer<float>> trajectory_file_f32;
    std::unique_ptr<io::npy_writer<double>> trajectory_file_f64;
    void publish_trajectory() {
        if (trajectory_file_f32) trajectory_file_f32->publish();
        if (trajectory_file_f64) trajectory_file_f64->publish();
    }
};

// A progress bar on stderr for run_spec's progress callback: "[####....] done/total", redrawn in place.
inline void progress_bar(std::size_t done, std::size_t total) {
    constexpr std::size_t width = 40;
    const std::size_t filled = total ? done * width / total : width;
    std::fprintf(stderr, "\r[%s%s] %zu/%zu", std::string(filled, '#').c_str(), std::string(width - filled, '.').c_str(), done,
                 total);
    if (done >= total) std::fputc('\n', stderr);
    std::fflush(stderr);
}

// progress(done, total) is called after every step (e.g. progress_bar). The spec's memory, work and output
// are checked against settings.limits before anything is read or allocated (spec_limits.hpp).
spec_run run_spec(const io::json_value& root, const std::filesystem::path& dir, bool always_record = false,
                  const std::function<void(std::size_t, std::size_t)>& progress = {}, const run_settings& settings = {});

}  // namespace diffuse::cli
