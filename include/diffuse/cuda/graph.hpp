#pragma once
// A sampling run (or any device work) recorded once as a CUDA graph and replayed without host work:
//
//   auto graph = diffuse::capture_graph([&] { diffuse::sample_ddim(m, x, ac, grid, options, noise); });
//   graph.replay();   // the whole run again, on x's current contents: one graph launch, then its checks
//
// capture_graph(f) runs f with this thread's device work recorded instead of run (cudaStreamBeginCapture on a
// stream of its own, relaxed mode; under DIFFUSE_CUDA_ON_HOST a list of host operations): f's kernels, copies
// and GEMMs, in order. Nothing runs during the capture — x is unchanged when it returns. Every host value the
// work needs is fixed at capture time: step coefficients, per-sample times, draws, the network's embeddings
// and labels; host-to-device copies inside f become the graph's constants, uploaded once when the capture
// ends (cuda/runtime.hpp). So a replay on a given x gives the bits of the direct run from that x. The noise
// seeds alone live in device slots that can be changed between replays:
//
//   graph.set_noise_seed(captured_seed, new_seed);   // the next replays draw the run's noise with new_seed
//
//   device_graph::replay()   launches the graph on its stream (after the work already on the default stream),
//                            waits for it, then runs the deferred finite checks
//                            in recording order: a NaN or Inf in the initial x or a network output throws the
//                            diffuse::error the direct run would have thrown (x then holds the finished replay's
//                            values). A CUDA error is a diffuse::error naming cudaGraphLaunch or the wait.
//   set_noise_seed(from, to) the noise captured with seed `from` is drawn with seed `to` from the next replay on
//   size()                   the recorded operations (graph nodes);  checks(): the deferred checks.
//
// What f may do: the fixed-grid samplers and their steppers (the predictor-corrector samplers' Langevin
// corrector included), guidance with or without rescale and the device U-Net on device tensors, and the
// reductions into per-sample values in device memory (sum_squares / dot / mean / variance into a
// tensor_view<double, memory_space::device>, lincomb's per_sample of such a view) — allocations inside f are
// fine (the graph owns what f frees). What it may not: read device values on the host — sum_squares, dot, mean,
// variance into a host span, quantile_abs, first_non_finite_sample, a copy to host memory; so not the
// adaptive-step samplers' error norms: a diffuse::error naming the call, and the capture is abandoned (nothing recorded survives; the thread is back to direct execution). Captures do not
// nest. The graph reads and writes the memory f used: keep those tensors, the models and the network alive and
// unmoved while replaying. A workspace or scratch buffer that a later direct call regrows (a larger batch) is
// kept alive for the graph (grow_buffer, cuda/memory.hpp) and freed with the last graph.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>

#include "diffuse/core/error.hpp"
#include "diffuse/cuda/primitives.hpp"
#include "diffuse/cuda/runtime.hpp"

namespace diffuse {

class device_graph {
public:
    device_graph(device_graph&&) noexcept = default;
    device_graph& operator=(device_graph&&) noexcept = default;
    ~device_graph() = default;

    void replay() {
        constexpr const char* where = "device_graph::replay";
        if (!state_) detail::fail(where, "this graph was moved from");
#if defined(DIFFUSE_CUDA_ON_HOST)
        state_->recording.replay_operations();
#else
        // the graph's stream does not wait for the legacy default stream by itself: the direct work before
        // (an x filled by a kernel, say) must finish first
        detail::cuda_check(cudaEventRecord(state_->ready, nullptr), where, "cudaEventRecord");
        detail::cuda_check(cudaStreamWaitEvent(state_->stream, state_->ready, 0), where, "cudaStreamWaitEvent");
        detail::cuda_check(cudaGraphLaunch(state_->exec, state_->stream), where, "cudaGraphLaunch");
        detail::cuda_check(cudaStreamSynchronize(state_->stream), where, "cudaStreamSynchronize");
#endif
        state_->recording.run_checks(where);
    }

    // From the next replay on, the noise the capture drew with seed `captured` (a counter_noise's, fill_normal's)
    // is drawn with seed `seed`: the replay gives the direct run's bits with that seed. A seed the capture did
    // not draw with is a diffuse::error.
    void set_noise_seed(std::uint64_t captured, std::uint64_t seed) {
        if (!state_) detail::fail("device_graph::set_noise_seed", "this graph was moved from");
        state_->recording.set_seed(captured, seed, "device_graph::set_noise_seed");
    }

    [[nodiscard]] std::size_t size() const noexcept { return state_ ? state_->nodes : 0; }
    [[nodiscard]] std::size_t checks() const noexcept { return state_ ? state_->recording.checks() : 0; }

private:
    template <class F>
    friend device_graph capture_graph(F&& f);

    struct state {
        detail::graph_recording recording;
        std::size_t nodes = 0;
#if !defined(DIFFUSE_CUDA_ON_HOST)
        cudaStream_t stream = nullptr;
        cudaGraph_t graph = nullptr;
        cudaGraphExec_t exec = nullptr;
        cudaEvent_t ready = nullptr;  // the legacy stream's work before a replay
        ~state() {
            if (ready != nullptr) static_cast<void>(cudaEventDestroy(ready));
            if (exec != nullptr) static_cast<void>(cudaGraphExecDestroy(exec));
            if (graph != nullptr) static_cast<void>(cudaGraphDestroy(graph));
            if (stream != nullptr) static_cast<void>(cudaStreamDestroy(stream));
        }
#endif
    };
    explicit device_graph(std::unique_ptr<state> s) noexcept : state_(std::move(s)) {}
    std::unique_ptr<state> state_;
};

namespace detail {
// While a capture records: the thread's recording (and, on a GPU, its current stream) are the capture's;
// restored however the capture ends.
class recording_scope {
public:
    recording_scope(const recording_scope&) = delete;
    recording_scope& operator=(const recording_scope&) = delete;
#if defined(DIFFUSE_CUDA_ON_HOST)
    explicit recording_scope(graph_recording& r) noexcept { graph_recording::active() = &r; }
    ~recording_scope() { graph_recording::active() = nullptr; }
#else
    recording_scope(graph_recording& r, cudaStream_t stream) noexcept : previous_(current_stream_slot()) {
        graph_recording::active() = &r;
        current_stream_slot() = stream;
    }
    ~recording_scope() {
        graph_recording::active() = nullptr;
        current_stream_slot() = previous_;
    }

private:
    cudaStream_t previous_;
#endif
};
}  // namespace detail

template <class F>
[[nodiscard]] device_graph capture_graph(F&& f) {
    constexpr const char* where = "capture_graph";
    if (detail::graph_recording::active() != nullptr)
        detail::fail(where, "a capture is already recording on this thread: captures do not nest");
    detail::require_cuda_device(where);
    auto s = std::make_unique<device_graph::state>();
#if defined(DIFFUSE_CUDA_ON_HOST)
    {
        detail::recording_scope scope(s->recording);
        std::forward<F>(f)();
    }
    s->nodes = s->recording.operations();
#else
    for (const detail::capture_preparation prepare : detail::capture_preparations()) prepare(where);
    detail::cuda_check(cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking), where, "cudaStreamCreateWithFlags");
    detail::cuda_check(cudaEventCreateWithFlags(&s->ready, cudaEventDisableTiming), where, "cudaEventCreateWithFlags");
    {
        detail::recording_scope scope(s->recording, s->stream);
        detail::cuda_check(cudaStreamBeginCapture(s->stream, cudaStreamCaptureModeRelaxed), where, "cudaStreamBeginCapture");
        try {
            std::forward<F>(f)();
        } catch (...) {
            cudaGraph_t abandoned = nullptr;
            if (cudaStreamEndCapture(s->stream, &abandoned) == cudaSuccess && abandoned != nullptr)
                static_cast<void>(cudaGraphDestroy(abandoned));
            (void)cudaGetLastError();
            throw;
        }
        detail::cuda_check(cudaStreamEndCapture(s->stream, &s->graph), where, "cudaStreamEndCapture");
    }
    detail::cuda_check(cudaGraphInstantiate(&s->exec, s->graph, 0), where, "cudaGraphInstantiate");
    detail::cuda_check(cudaGraphGetNodes(s->graph, nullptr, &s->nodes), where, "cudaGraphGetNodes");
#endif
    s->recording.upload_constants(where);
    return device_graph(std::move(s));
}

}  // namespace diffuse
