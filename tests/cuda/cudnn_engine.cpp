// The cuDNN engine's translation unit (cudnn_engine.hpp): the only one of test_cudnn_gpu and bench_cudnn that
// includes cuda/cudnn_conv.hpp, compiled by the host compiler (the header holds no device code).
#include "cudnn_engine.hpp"

#include "diffuse/core/error.hpp"
#include "diffuse/cuda/cudnn_conv.hpp"

namespace diffuse_device_checks {
namespace {

const diffuse::nn::cudnn_conv_engine& as_cudnn(const diffuse::nn::device_conv_engine& engine) {
    const auto* e = dynamic_cast<const diffuse::nn::cudnn_conv_engine*>(&engine);
    if (e == nullptr) diffuse::detail::fail("cudnn_engine", "the engine is not a cudnn_conv_engine");
    return *e;
}

}  // namespace

std::shared_ptr<diffuse::nn::device_conv_engine> make_cudnn_conv_engine() {
    return std::make_shared<diffuse::nn::cudnn_conv_engine>();
}
std::string cudnn_declined_because(const diffuse::nn::device_conv_engine& engine, const diffuse::nn::conv_problem& p) {
    return as_cudnn(engine).declined_because(p);
}
bool cudnn_uses_fallback_graph(const diffuse::nn::device_conv_engine& engine, const diffuse::nn::conv_problem& p) {
    return as_cudnn(engine).uses_fallback_graph(p);
}

}  // namespace diffuse_device_checks
