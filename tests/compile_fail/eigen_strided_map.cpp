// An Eigen::Map with a custom stride is not contiguous: diffuse::view rejects it at compile time.
#include <vector>

#include <Eigen/Core>

#include "diffuse/adapt/eigen.hpp"

int main() {
    std::vector<float> buffer(12);
#ifdef DIFFUSE_COMPILE_FAIL_CONTROL
    Eigen::Map<Eigen::MatrixXf> m(buffer.data(), 3, 2);
#else
    // Every other column of a 3 x 4 matrix.
    Eigen::Map<Eigen::MatrixXf, 0, Eigen::OuterStride<>> m(buffer.data(), 3, 2, Eigen::OuterStride<>(6));
#endif
    auto v = diffuse::view(m);
    return static_cast<int>(v.size()) - 6;
}
