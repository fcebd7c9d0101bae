// A lazy Eigen tensor operation must not cross diffuse's API: diffuse::view(a + b) stops compilation with a
// sentence asking to evaluate it into an Eigen::Tensor first.
#include <unsupported/Eigen/CXX11/Tensor>

#include "diffuse/adapt/eigen_tensor.hpp"

int main() {
    Eigen::Tensor<float, 2> a(3, 2), b(3, 2);
    a.setConstant(1.0f);
    b.setConstant(1.0f);
#ifdef DIFFUSE_COMPILE_FAIL_CONTROL
    Eigen::Tensor<float, 2> sum = a + b;
    auto v = diffuse::view(sum);
#else
    auto v = diffuse::view(a + b);
#endif
    return static_cast<int>(v.size()) - 6;
}
