#pragma once
// cudnn_conv_engine: the device U-Net's convolutions (cuda/conv_engine.hpp's contract: y = conv(x, w), NHWC x and
// y, KRSC w, zero padding top/left/bottom/right, one stride, float y and float accumulation) run by cuDNN through
// its graph API, written with the cuDNN frontend (cudnn_frontend::graph::Graph, header-only C++ over cuDNN's
// backend descriptors). The optional component diffuse::cudnn: the frontend's headers
// (tools/fetch_cudnn_frontend.sh puts them in .deps/cudnn-frontend/include), libcudnn and NVRTC (-lcudnn -lnvrtc:
// the frontend calls it). Its headers take a minute to compile: include this header in one translation unit of
// the program only, best a .cpp that the host compiler compiles (the header holds no device code; in a .cu,
// nvcc's device front end and cudafe++ parse the frontend too: ≈ 140 s of CPU against ≈ 50 s with g++ -O2),
// and hand the engine to networks elsewhere as a std::shared_ptr<device_conv_engine> (as tests/cuda/
// cudnn_engine.cpp does for the GPU test and benchmark):
//
//   auto engine = std::make_shared<diffuse::nn::cudnn_conv_engine>();   // needs a CUDA device
//   net.set_conv_engine(engine);   // before the first forward of a shape; then capture as usual (cuda/graph.hpp)
//
// Per conv_problem it builds one graph (kept for the engine's life, the "cannot" verdict too):
//   X {n, c, h, w} with strides {h·w·c, 1, w·c, c} (NHWC), W {k, c, r, s} with strides {c·r·s, 1, c·s, c}
//   (KRSC), conv_fprop (cross-correlation, pre-padding {top, left}, post-padding {bottom, right}, stride {s, s},
//   dilation {1, 1}), Y {n, k, Ho, Wo} float NHWC; compute type float. X and W are FLOAT in fp32 and tf32,
//   BFLOAT16 / HALF in bf16 / fp16 (cuda/reduced_precision.hpp's storage). Engines come from cuDNN's heuristics
//   (modes A, then FALLBACK), the first that supports the graph being built. fp32 deselects every engine with
//   the TENSOR_CORE or DOWN_CONVERT_INPUTS numerical note (float products, no TF32 — the contract); tf32 keeps
//   the tensor-core engines (TF32 products) and drops only the down-converting ones.
//   When the direct graph fails (validate, build, check_support), a second graph is tried: the convolution into
//   a virtual float tensor, then a pointwise IDENTITY into Y. When that fails too, supports() is false and the
//   network runs the problem through im2col + GEMM.
// supports() builds, and grows the engine's workspace to the plan's size, so convolve() never allocates; while
// the calling thread's current stream is capturing it builds nothing (an unprepared problem is declined).
// convolve() runs on diffuse::detail::current_stream() (cudnnSetStream each call); a failure is a diffuse::error
// naming cudnn_conv_engine and the frontend's message. The cuDNN handle is the engine's own (made in the
// constructor: before any capture). One thread at a time per engine.
// declined_because(p) and uses_fallback_graph(p) say what supports(p) found (tests/cuda/test_cudnn_gpu.cu).
// Not done: fused prologue / epilogue (bias, group norm, residual) in the cuDNN graph, autotuning among the
// heuristics' plans, the frontend's plan serialisation, dilation and groups (not in the contract); not yet run
// on a GPU here (compiled and linked only: test_cudnn_gpu is the check).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <cudnn_frontend.h>

#include "diffuse/core/error.hpp"
#include "diffuse/cuda/conv_engine.hpp"
#include "diffuse/cuda/memory.hpp"
#include "diffuse/cuda/runtime.hpp"

namespace diffuse::nn {

class cudnn_conv_engine final : public device_conv_engine {
public:
    cudnn_conv_engine() {
        diffuse::detail::require_cuda_device(where);
        if (const cudnnStatus_t s = cudnnCreate(&handle_); s != CUDNN_STATUS_SUCCESS)
            diffuse::detail::fail(where, std::string("cudnnCreate failed: ") + cudnnGetErrorString(s));
    }
    ~cudnn_conv_engine() override { static_cast<void>(cudnnDestroy(handle_)); }

    [[nodiscard]] bool supports(const conv_problem& p) override {
        if (const plan* c = find(p)) return c->graph != nullptr;
        if (capturing()) return false;  // (not cached: the next uncaptured call builds it)
        plan made = build(p);
        if (made.graph != nullptr) grow_buffer(workspace_, (made.workspace_bytes + sizeof(float) - 1) / sizeof(float));
        plans_.push_back(std::move(made));
        return plans_.back().graph != nullptr;
    }

    void convolve(const conv_problem& p, const void* x, const void* w, float* y) override {
        const plan* c = find(p);
        if (c == nullptr || c->graph == nullptr)
            diffuse::detail::fail(where, "convolve called for a problem supports() did not accept");
        if (const cudnnStatus_t s = cudnnSetStream(handle_, diffuse::detail::current_stream()); s != CUDNN_STATUS_SUCCESS)
            diffuse::detail::fail(where, std::string("cudnnSetStream failed: ") + cudnnGetErrorString(s));
        std::unordered_map<fe_tensor, void*> pack{
            {c->x, const_cast<void*>(x)}, {c->w, const_cast<void*>(w)}, {c->y, static_cast<void*>(y)}};
        auto status = c->graph->execute(handle_, pack, c->workspace_bytes > 0 ? workspace_.data() : nullptr);
        if (status.is_bad()) diffuse::detail::fail(where, "the cuDNN graph's execute failed: " + status.get_message());
    }

    // "cuDNN 9.19.0 (frontend 1.32.0)": the library loaded at run time, the frontend compiled in.
    [[nodiscard]] std::string name() const override {
        const std::size_t v = cudnnGetVersion();
        return "cuDNN " + std::to_string(v / 10000) + "." + std::to_string(v % 10000 / 100) + "." + std::to_string(v % 100) +
               " (frontend " + std::to_string(CUDNN_FRONTEND_MAJOR_VERSION) + "." + std::to_string(CUDNN_FRONTEND_MINOR_VERSION) +
               "." + std::to_string(CUDNN_FRONTEND_PATCH_VERSION) + ")";
    }
    // Why supports(p) answered false (the frontend's messages, direct graph then fallback); empty when it did not.
    [[nodiscard]] std::string declined_because(const conv_problem& p) const {
        const plan* c = find(p);
        return c == nullptr ? std::string() : c->reason;
    }
    // Whether p's plan is the fallback graph (conv into a virtual tensor, pointwise identity); false when unbuilt.
    [[nodiscard]] bool uses_fallback_graph(const conv_problem& p) const {
        const plan* c = find(p);
        return c != nullptr && c->graph != nullptr && c->fallback;
    }

private:
    static constexpr const char* where = "cudnn_conv_engine";
    using fe_tensor = std::shared_ptr<cudnn_frontend::graph::Tensor_attributes>;
    struct plan {
        conv_problem problem;
        std::shared_ptr<cudnn_frontend::graph::Graph> graph;  // null: declined
        fe_tensor x, w, y;
        std::int64_t workspace_bytes = 0;
        bool fallback = false;
        std::string reason;
    };

    [[nodiscard]] const plan* find(const conv_problem& p) const {
        for (const auto& c : plans_)
            if (c.problem == p) return &c;
        return nullptr;
    }
    // Whether this thread is recording a capture (cuda/graph.hpp), or its current stream is being captured (an
    // error of the query counts as capturing: building is what must not happen inside one).
    [[nodiscard]] static bool capturing() {
        if (diffuse::detail::graph_recording::active() != nullptr) return true;
        cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
        if (cudaStreamIsCapturing(diffuse::detail::current_stream(), &status) != cudaSuccess) {
            static_cast<void>(cudaGetLastError());
            return true;
        }
        return status != cudaStreamCaptureStatusNone;
    }

    // The direct graph, else the fallback graph; a plan with a null graph and the reasons when neither builds.
    [[nodiscard]] plan build(const conv_problem& p) {
        plan made{p, nullptr, nullptr, nullptr, nullptr, 0, false, {}};
        for (const bool fallback : {false, true}) {
            plan attempt = build_graph(p, fallback);
            if (attempt.graph != nullptr) return attempt;
            made.reason += std::string(made.reason.empty() ? "" : "; ") + (fallback ? "fallback graph: " : "direct graph: ") +
                           attempt.reason;
        }
        return made;
    }
    [[nodiscard]] plan build_graph(const conv_problem& p, bool fallback) {
        namespace fg = cudnn_frontend::graph;
        using cudnn_frontend::DataType_t;
        plan made{p, nullptr, nullptr, nullptr, nullptr, 0, fallback, {}};
        const auto i64 = [](std::size_t v) { return static_cast<std::int64_t>(v); };
        const std::int64_t n = i64(p.batch), c = i64(p.cin), h = i64(p.h), w = i64(p.w), k = i64(p.cout), r = i64(p.k),
                           ho = i64(p.out_h()), wo = i64(p.out_w());
        const DataType_t io = p.precision == device_precision::bf16   ? DataType_t::BFLOAT16
                              : p.precision == device_precision::fp16 ? DataType_t::HALF
                                                                      : DataType_t::FLOAT;
        auto g = std::make_shared<fg::Graph>();
        g->set_io_data_type(io).set_intermediate_data_type(DataType_t::FLOAT).set_compute_data_type(DataType_t::FLOAT);
        made.x = g->tensor(fg::Tensor_attributes().set_name("x").set_data_type(io).set_dim({n, c, h, w}).set_stride({h * w * c, 1, w * c, c}));
        made.w = g->tensor(fg::Tensor_attributes().set_name("w").set_data_type(io).set_dim({k, c, r, r}).set_stride({c * r * r, 1, c * r, c}));
        auto conv = fg::Conv_fprop_attributes()
                        .set_name("conv")
                        .set_pre_padding({i64(p.pad.top), i64(p.pad.left)})
                        .set_post_padding({i64(p.pad.bottom), i64(p.pad.right)})
                        .set_stride({i64(p.stride), i64(p.stride)})
                        .set_dilation({1, 1});
        conv.set_compute_data_type(DataType_t::FLOAT);
        fe_tensor out = g->conv_fprop(made.x, made.w, conv);
        out->set_data_type(DataType_t::FLOAT).set_dim({n, k, ho, wo}).set_stride({ho * wo * k, 1, wo * k, k});
        if (fallback) {
            out->set_is_virtual(true);
            auto identity = fg::Pointwise_attributes().set_name("identity").set_mode(cudnn_frontend::PointwiseMode_t::IDENTITY);
            identity.set_compute_data_type(DataType_t::FLOAT);
            made.y = g->pointwise(out, identity);
            made.y->set_data_type(DataType_t::FLOAT).set_dim({n, k, ho, wo}).set_stride({ho * wo * k, 1, wo * k, k});
        } else {
            made.y = out;
        }
        made.y->set_output(true);
        auto step = [&](cudnn_frontend::error_t status, const char* what) {
            if (status.is_good()) return true;
            made.reason = std::string(what) + ": " + status.get_message();
            return false;
        };
        using cudnn_frontend::NumericalNote_t;
        if (!step(g->validate(), "validate") || !step(g->build_operation_graph(handle_), "build_operation_graph") ||
            !step(g->create_execution_plans({cudnn_frontend::HeurMode_t::A, cudnn_frontend::HeurMode_t::FALLBACK}),
                  "create_execution_plans"))
            return made;
        if (p.precision == device_precision::fp32)  // float products only: no TF32 tensor cores, no down-conversion
            g->deselect_numeric_notes({NumericalNote_t::TENSOR_CORE, NumericalNote_t::DOWN_CONVERT_INPUTS});
        else if (p.precision == device_precision::tf32)
            g->deselect_numeric_notes({NumericalNote_t::DOWN_CONVERT_INPUTS});
        if (!step(g->check_support(), "check_support") ||
            !step(g->build_plans(cudnn_frontend::BuildPlanPolicy_t::HEURISTICS_CHOICE), "build_plans") ||
            !step(g->get_workspace_size(made.workspace_bytes), "get_workspace_size"))
            return made;
        made.graph = std::move(g);
        return made;
    }

    cudnnHandle_t handle_ = nullptr;
    std::vector<plan> plans_;
    space_buffer<float, memory_space::device> workspace_;  // the largest plan's workspace (grown by supports())
};

}  // namespace diffuse::nn
