// A program that uses diffuse as a consumer would: through diffuse::diffuse, diffuse::eigen and
// diffuse::xtensor, built either from an installed package (find_package) or from the source tree
// (add_subdirectory). It returns 0 only when the numbers are right.
#include <cstdio>

#include <Eigen/Core>
#include <xtensor/xarray.hpp>

#include <diffuse/adapt/eigen.hpp>
#include <diffuse/adapt/xtensor.hpp>
#include <diffuse/core/elementwise.hpp>

int main() {
    // Three samples of four values in an Eigen matrix (a column is a sample) ...
    Eigen::MatrixXf x = Eigen::MatrixXf::Constant(4, 3, 2.0f);
    // ... and the same shape in xtensor (shape[0] is the batch).
    xt::xarray<float> noise = xt::xarray<float>::from_shape({3, 4});
    noise.fill(1.0f);
    Eigen::MatrixXf out(4, 3);

    const auto v = diffuse::view(x);
    if (v.batch != 3 || v.per_sample != 4 || v.data != x.data()) {
        std::puts("consumer: wrong view of an Eigen matrix");
        return 1;
    }
    // out = 0.5 x + 3 noise, one pass, across two libraries' containers.
    diffuse::lincomb(out, 0.5, x, 3.0, noise);
    for (Eigen::Index j = 0; j < out.cols(); ++j) {
        for (Eigen::Index i = 0; i < out.rows(); ++i) {
            if (out(i, j) != 4.0f) {
                std::printf("consumer: out(%ld, %ld) = %g, expected 4\n", static_cast<long>(i), static_cast<long>(j),
                            static_cast<double>(out(i, j)));
                return 1;
            }
        }
    }
    std::puts("consumer: ok");
    return 0;
}
