// A primitive on device tensors without the CUDA backend's header: one sentence naming that header.
#include "diffuse/core/reduce.hpp"

int main() {
    float storage[4] = {1, 2, 3, 4};
    double out[1] = {0};
#ifdef DIFFUSE_COMPILE_FAIL_CONTROL
    diffuse::tensor_view<const float> x{storage, 1, 4};
#else
    diffuse::tensor_view<const float, diffuse::memory_space::device> x{storage, 1, 4};
#endif
    diffuse::sum_squares(x, out);
    return static_cast<int>(out[0]);
}
