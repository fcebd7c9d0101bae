// A consumer of diffuse::torch (built by tests/package/ in find_package mode when diffuse has its libtorch
// component, i.e. with gcc): views a libtorch tensor as a diffuse tensor and writes through the view,
// out = 0.5 x + 3 noise in the tensor's own storage. Returns 0 only when the numbers are right.
#include <cstdio>

#include <diffuse/adapt/torch.hpp>
#include <diffuse/core/elementwise.hpp>

int main() {
    const at::Tensor x = torch::full({3, 4}, 2.0f);
    const at::Tensor noise = torch::ones({3, 4});
    at::Tensor out = torch::zeros({3, 4});
    auto v = diffuse::torch_view<float>(out);
    if (v.batch != 3 || v.per_sample != 4 || v.data != out.data_ptr<float>()) {
        std::puts("torch_consumer: wrong view of a tensor");
        return 1;
    }
    diffuse::lincomb(v, 0.5, diffuse::torch_view<float>(x), 3.0, diffuse::torch_view<float>(noise));
    if (!torch::equal(out, torch::full({3, 4}, 4.0f))) {
        std::puts("torch_consumer: out differs from 0.5 x + 3 noise = 4");
        return 1;
    }
    std::puts("torch_consumer: ok");
    return 0;
}
