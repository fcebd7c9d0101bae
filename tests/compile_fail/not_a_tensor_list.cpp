// diffuse::view on a container diffuse does not adapt (std::list is not contiguous) must stop
// compilation with diffuse's sentence.
#include <list>
#include <vector>

#include "diffuse/adapt/std.hpp"

int main() {
#ifdef DIFFUSE_COMPILE_FAIL_CONTROL
    std::vector<float> x(4);
#else
    std::list<float> x(4);
#endif
    auto v = diffuse::view(x);
    return static_cast<int>(v.size()) - 4;
}
