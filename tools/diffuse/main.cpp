// diffuse sample SPEC.json OUT.npy — runs one sampler on the spec's denoiser and writes the final sample
// (and, when the spec names "trajectory", every step's state) as .npy. The spec format: docs/cli.md.
// Errors print one line naming the spec field and exit with status 1 (2 for usage errors).
#include <cstdio>
#include <exception>
#include <filesystem>
#include <string>

#include "runner.hpp"

int main(int argc, char** argv) {
    if (argc != 4 || std::string(argv[1]) != "sample") {
        std::fprintf(stderr, "usage: diffuse sample SPEC.json OUT.npy\n");
        return 2;
    }
    try {
        const std::filesystem::path spec_path = argv[2];
        const auto root = diffuse::cli::load_json(spec_path);
        const auto dir = spec_path.parent_path();
        const auto r = diffuse::cli::run_spec(root, dir);
        auto write = [&](const std::string& path, const std::vector<double>& v, std::vector<std::size_t> shape) {
            if (r.dtype == "float32") {
                std::vector<float> f(v.begin(), v.end());
                diffuse::io::write_npy<float>(path, f, shape);
            } else {
                diffuse::io::write_npy<double>(path, v, shape);
            }
        };
        write(argv[3], r.x, r.shape);
        if (const auto* t = root.find("trajectory")) {
            auto shape = r.shape;
            shape.insert(shape.begin(), r.recorded_steps);
            write((dir / t->as_string()).string(), r.trajectory, shape);
        }
    } catch (const std::exception& e) {
        std::string msg = e.what();
        for (auto& c : msg)
            if (c == '\n') c = ' ';
        std::fprintf(stderr, "diffuse: %s\n", msg.c_str());
        return 1;
    }
    return 0;
}
