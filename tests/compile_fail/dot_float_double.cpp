// A per-sample reduction over a float and a double tensor: diffuse's sentence is the only error.
#include <vector>

#include "diffuse/adapt/std.hpp"
#include "diffuse/core/reduce.hpp"

int main() {
    std::vector<float> a(4, 1.0f);
    std::vector<double> out(1);
#ifdef DIFFUSE_COMPILE_FAIL_CONTROL
    std::vector<float> b(4, 2.0f);
#else
    std::vector<double> b(4, 2.0);
#endif
    diffuse::dot(a, b, out);
    return static_cast<int>(out[0]);
}
