// A lazy Eigen expression must not cross diffuse's API: diffuse::view(a + b) stops compilation with a
// sentence asking to evaluate it into a Matrix first.
#include <Eigen/Core>

#include "diffuse/adapt/eigen.hpp"

int main() {
    Eigen::MatrixXf a = Eigen::MatrixXf::Ones(3, 2), b = Eigen::MatrixXf::Ones(3, 2);
#ifdef DIFFUSE_COMPILE_FAIL_CONTROL
    Eigen::MatrixXf sum = a + b;
    auto v = diffuse::view(sum);
#else
    auto v = diffuse::view(a + b);
#endif
    return static_cast<int>(v.size()) - 6;
}
