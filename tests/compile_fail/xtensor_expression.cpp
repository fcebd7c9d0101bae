// A lazy xtensor expression must not cross diffuse's API: diffuse::view(a + b) stops compilation with
// a sentence asking to evaluate it into an xt::xarray first.
#include <xtensor/xarray.hpp>

#include "diffuse/adapt/xtensor.hpp"

int main() {
    xt::xarray<float> a = {1.0f, 2.0f}, b = {3.0f, 4.0f};
#ifdef DIFFUSE_COMPILE_FAIL_CONTROL
    xt::xarray<float> sum = a + b;
    auto v = diffuse::view(sum);
#else
    auto v = diffuse::view(a + b);
#endif
    return static_cast<int>(v.size()) - 2;
}
