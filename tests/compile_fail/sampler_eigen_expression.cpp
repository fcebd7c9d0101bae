// A one-call sampler given a lazy Eigen expression as x: the first error is diffuse's sentence about x
// (detail::check_sampler_arguments), before anything the sampler would fail to compile after it.
#include <cstddef>

#include <Eigen/Core>

#include "diffuse/adapt/eigen.hpp"
#include "diffuse/samplers/euler.hpp"
#include "diffuse/samplers/model.hpp"
#include "diffuse/schedules/sigmas.hpp"

int main() {
    auto net = [](diffuse::tensor_view<const float> x, const diffuse::model_cond&, diffuse::tensor_view<float> out) {
        for (std::size_t i = 0; i < x.size(); ++i) out[i] = 0.0f;
    };
    diffuse::model m(net, diffuse::prediction::sample, diffuse::sigma_time{});
    const diffuse::time_grid grid(diffuse::karras_sigmas(4, 0.1, 10.0));
    Eigen::MatrixXf a = Eigen::MatrixXf::Ones(3, 2), b = Eigen::MatrixXf::Ones(3, 2);
#ifdef DIFFUSE_COMPILE_FAIL_CONTROL
    Eigen::MatrixXf x = a + b;
    diffuse::sample_euler(m, x, grid);
#else
    diffuse::sample_euler(m, a + b, grid);
#endif
}
