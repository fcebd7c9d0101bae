#pragma once
// Helpers shared by the schedules tests: golden-file loading and float32 ulp distances.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "diffuse/io/npy.hpp"

namespace sched_test {

inline std::string golden_path(const std::string& name) {
    return std::string(DIFFUSE_GOLDEN_DIR) + "/schedules/" + name + ".npy";
}

inline diffuse::io::npy_array load(const std::string& name) { return diffuse::io::read_npy(golden_path(name)); }

// Row r of a 2-D golden array as doubles.
inline std::vector<double> row(const diffuse::io::npy_array& a, std::size_t r) {
    const auto all = a.as<double>();
    const std::size_t cols = a.shape.at(1);
    return std::vector<double>(all.begin() + static_cast<std::ptrdiff_t>(r * cols),
                               all.begin() + static_cast<std::ptrdiff_t>((r + 1) * cols));
}

// Distance in float32 units in the last place between two values (both rounded to float32).
inline std::int64_t ulp_f32(double a, double b) {
    auto key = [](float f) {
        std::int32_t i;
        std::memcpy(&i, &f, 4);
        return i < 0 ? std::int64_t{INT32_MIN} - i : std::int64_t{i};
    };
    return std::llabs(key(static_cast<float>(a)) - key(static_cast<float>(b)));
}

inline std::int64_t max_ulp_f32(const std::vector<double>& a, const std::vector<double>& b) {
    if (a.size() != b.size()) return INT64_MAX;
    std::int64_t m = 0;
    for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, ulp_f32(a[i], b[i]));
    return m;
}

inline double max_rel(const std::vector<double>& a, const std::vector<double>& b, double floor = 1e-300) {
    if (a.size() != b.size()) return INFINITY;
    double m = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const double d = std::fabs(a[i] - b[i]);
        if (d == 0) continue;
        m = std::max(m, d / std::max(std::fabs(b[i]), floor));
    }
    return m;
}

}  // namespace sched_test
