#pragma once
// The files a spec names (docs/cli.md "Paths"): spec.trajectory, init_noise, step_noise, grid.path and
// denoiser.timestep_table resolve relative to the spec's folder and must stay inside it — an absolute
// path, one that leaves the folder with "..", or one whose folders are symbolic links leading outside it
// is a spec_error unless the run allows paths outside the spec (`diffuse sample --allow-paths-outside-spec`).
// The .npy files read are bounded (npy_limits::max_data_bytes = spec_files::max_file_bytes).
// The model folder denoiser.path is resolved relative to the spec's folder too, but may lie anywhere: model
// folders are shared between specs, and only read.

#include <cstdint>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "diffuse/io/npy.hpp"
#include "spec_fields.hpp"

namespace diffuse::cli {

struct spec_files {
    std::filesystem::path dir;              // the spec's folder ("" or "." for the working folder)
    bool allow_outside = false;             // absolute paths and paths leaving dir are allowed
    std::uint64_t max_file_bytes = std::uint64_t{1} << 30;  // data bytes of one .npy file

    // The path `value` of spec field `field`, resolved against dir and checked against the rules above.
    [[nodiscard]] std::filesystem::path resolve(const std::string& value, const std::string& field) const {
        namespace fs = std::filesystem;
        const fs::path p(value);
        if (value.empty()) throw spec_error(field + ": an empty path");
        const fs::path joined = dir / p;
        if (allow_outside) return joined;
        if (p.is_absolute() || p.has_root_name() || p.has_root_directory())
            throw spec_error(field + ": \"" + value + "\" is an absolute path; files a spec names lie in the spec's folder " +
                             "(--allow-paths-outside-spec allows others)");
        auto escapes = [](const fs::path& rel) { return rel.empty() || *rel.begin() == ".."; };
        if (escapes(p.lexically_normal()))
            throw spec_error(field + ": \"" + value + "\" leaves the spec's folder (--allow-paths-outside-spec allows it)");
        // symbolic links: the folder and the target with every existing link resolved
        std::error_code e1, e2, e3, e4;
        auto real = [](const fs::path& q, std::error_code& a, std::error_code& b) {  // absolute first: a relative path
            const auto abs = fs::absolute(q.empty() ? fs::path(".") : q, a);         // whose head is missing stays relative
            return fs::weakly_canonical(abs.lexically_normal(), b).lexically_normal();
        };
        const fs::path base = real(dir, e1, e2), target = real(joined, e3, e4);
        if (!e1 && !e2 && !e3 && !e4 && escapes(target.lexically_relative(base)))
            throw spec_error(field + ": \"" + value + "\" leads outside the spec's folder through a symbolic link " +
                             "(--allow-paths-outside-spec allows it)");
        return joined.lexically_normal();
    }

    // A float32/float64 .npy file of spec field `field` as doubles, with its shape; the data must be a
    // positive multiple of `multiple_of` values.
    struct npy_values {
        std::vector<double> values;
        std::vector<std::size_t> shape;
    };
    [[nodiscard]] npy_values read_npy(const std::string& value, const std::string& field, std::size_t multiple_of) const {
        const auto p = resolve(value, field);
        io::npy_array a;
        try {
            io::npy_limits lim;
            lim.max_data_bytes = max_file_bytes;
            a = io::read_npy(p.string(), lim);
        } catch (const std::exception& e) {
            throw spec_error(field + ": " + std::string(diffuse::detail::error_text(e)));
        }
        if (a.dtype != "<f4" && a.dtype != "<f8") throw spec_error(field + ": " + p.string() + " must hold float32 or float64");
        if (a.size() == 0 || a.size() % multiple_of != 0)
            throw spec_error(field + ": " + p.string() + " holds " + std::to_string(a.size()) + " values, not a positive multiple of " +
                             std::to_string(multiple_of));
        return {a.as<double>(), a.shape};
    }
};

}  // namespace diffuse::cli
