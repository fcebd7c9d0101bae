// A one-call sampler given an observer where the noise source belongs (the argument after the options):
// the first error is diffuse's sentence saying the noise source comes first and the observer after it.
#include <cstddef>
#include <vector>

#include "diffuse/adapt/std.hpp"
#include "diffuse/samplers/euler.hpp"
#include "diffuse/samplers/model.hpp"
#include "diffuse/schedules/sigmas.hpp"

int main() {
    auto net = [](diffuse::tensor_view<const float> x, const diffuse::model_cond&, diffuse::tensor_view<float> out) {
        for (std::size_t i = 0; i < x.size(); ++i) out[i] = 0.0f;
    };
    diffuse::model m(net, diffuse::prediction::sample, diffuse::sigma_time{});
    const diffuse::time_grid grid(diffuse::karras_sigmas(4, 0.1, 10.0));
    std::vector<float> x(6, 1.0f);
    auto progress = [](const diffuse::step_info<float>&) {};
#ifdef DIFFUSE_COMPILE_FAIL_CONTROL
    diffuse::sample_euler(m, diffuse::batched(x, 2), grid, {}, diffuse::counter_noise{}, progress);
#else
    diffuse::sample_euler(m, diffuse::batched(x, 2), grid, {}, progress);
#endif
}
