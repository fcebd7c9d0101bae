// lincomb over float and double tensors: diffuse's sentence is the only error (no cast of a double* to a
// float* reported before it).
#include <vector>

#include "diffuse/adapt/std.hpp"
#include "diffuse/core/elementwise.hpp"

int main() {
    std::vector<float> out(4), a(4, 1.0f);
#ifdef DIFFUSE_COMPILE_FAIL_CONTROL
    std::vector<float> b(4, 2.0f);
#else
    std::vector<double> b(4, 2.0);
#endif
    diffuse::lincomb(out, 0.5, a, 0.25, b);
    return static_cast<int>(out[0]);
}
