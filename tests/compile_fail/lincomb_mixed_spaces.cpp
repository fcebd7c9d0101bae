// lincomb over a device tensor and a host tensor: diffuse's sentence about memory spaces is the only error.
#include <vector>

#include "diffuse/adapt/std.hpp"
#include "diffuse/core/elementwise.hpp"

int main() {
    std::vector<float> a(4, 1.0f), b(4, 2.0f);
    diffuse::tensor_view<float, diffuse::memory_space::device> out{nullptr, 1, 4};
#ifdef DIFFUSE_COMPILE_FAIL_CONTROL
    diffuse::tensor_view<float> host_out{a.data(), 1, 4};
    diffuse::lincomb(host_out, 0.5, a, 0.25, b);
    (void)out;
#else
    diffuse::lincomb(out, 0.5, a, 0.25, b);
#endif
    return static_cast<int>(a[0]);
}
