// diffuse::view on a user type without a diffuse::tensor_traits specialisation must stop compilation
// with diffuse's sentence.
#include <cstddef>
#include <vector>

#include "diffuse/core/tensor.hpp"

struct my_images {
    std::vector<float> pixels = std::vector<float>(4);
};

#ifdef DIFFUSE_COMPILE_FAIL_CONTROL
template <>
struct diffuse::tensor_traits<my_images> {
    using value_type = float;
    static constexpr diffuse::memory_space space = diffuse::memory_space::host;
    static float* data(my_images& t) { return t.pixels.data(); }
    static std::size_t batch(const my_images&) { return 1; }
    static std::size_t per_sample(const my_images& t) { return t.pixels.size(); }
};
#endif

int main() {
    my_images x;
    auto v = diffuse::view(x);
    return static_cast<int>(v.size()) - 4;
}
