// A one-call sampler given a device state and recorded_noise, whose draws are host memory: the first error is
// diffuse's sentence saying the noise source has no device form (the control: the same call on a host state).
#include <cstddef>
#include <vector>

#include "diffuse/samplers/euler.hpp"
#include "diffuse/samplers/model.hpp"
#include "diffuse/schedules/sigmas.hpp"

struct zero_net {
    template <class V, class W>
    void operator()(V, const diffuse::model_cond&, W out) const {
        diffuse::lincomb(out, 0.0, out);
    }
};

int main() {
    diffuse::model m(zero_net{}, diffuse::prediction::sample, diffuse::sigma_time{});
    const diffuse::time_grid grid(diffuse::karras_sigmas(4, 0.1, 10.0));
    std::vector<float> values(6, 1.0f);
#ifdef DIFFUSE_COMPILE_FAIL_CONTROL
    const diffuse::tensor_view<float> x{values.data(), 2, 3};
#else
    const diffuse::tensor_view<float, diffuse::memory_space::device> x{values.data(), 2, 3};
#endif
    diffuse::recorded_noise noise(std::vector<double>(24, 0.5), 6);
    diffuse::sample_euler_ancestral(m, x, grid, {}, noise);
}
