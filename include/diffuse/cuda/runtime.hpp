#pragma once
// The CUDA runtime under the device backend: error checks, the calling thread's current stream, raw device
// memory, and the recording of a CUDA graph capture (cuda/graph.hpp) that the backend's memory, copies and
// launches consult.
//
//   current_stream()            the stream the backend's work goes to: the legacy default stream, or the
//                               capture's own stream while diffuse::capture_graph records on this thread
//   graph_recording::active()   the recording of this thread's capture, or null
//
// While a capture records, nothing it records runs; the backend then
//   - keeps every device_free until the graph is destroyed (a buffer freed inside the capture may be what
//     recorded work reads or writes in a replay);
//   - serves device scratch as memory owned by the graph (the per-thread scratch may be regrown and freed by
//     later direct calls, while the graph still refers to it);
//   - stages host-to-device copies as the graph's constants: the bytes the host memory holds at capture time,
//     uploaded once when the capture ends, then copied on the device in every replay;
//   - refuses device-to-host copies (a value read on the host during a capture would not exist yet);
//   - turns finite checks into deferred checks: a slot the recorded work writes, read after each replay;
//   - gives the recorded noise its seed through a device slot per distinct seed, which
//     device_graph::set_noise_seed rewrites between replays.
// Under DIFFUSE_CUDA_ON_HOST "device" memory is host memory and a recording is a list of host operations
// (kernel loops, copies, GEMM loops) run in order by each replay: the same rules, testable without a GPU.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "diffuse/core/error.hpp"

#if !defined(DIFFUSE_CUDA_ON_HOST) && defined(THRUST_DEVICE_SYSTEM)
#include <thrust/detail/config/device_system.h>
#if THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_CPP || THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_OMP || \
    THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_TBB
#define DIFFUSE_CUDA_ON_HOST 1
#endif
#endif

#if !defined(DIFFUSE_CUDA_ON_HOST)
#include <cuda_runtime_api.h>
#endif

namespace diffuse::detail {

#if defined(DIFFUSE_CUDA_ON_HOST)
inline void require_cuda_device(const char*) {}
[[nodiscard]] inline void* raw_device_allocate(std::size_t bytes, const char*) {
    return bytes == 0 ? nullptr : ::operator new(bytes);
}
inline void raw_device_free(void* p) noexcept { ::operator delete(p); }
inline void raw_copy(void* dst, const void* src, std::size_t bytes, const char*) {
    if (bytes != 0) std::memmove(dst, src, bytes);
}
#else
// Throws diffuse::error naming `where` and the CUDA runtime's own message unless `status` is cudaSuccess.
inline void cuda_check(cudaError_t status, const char* where, std::string_view call) {
    if (status == cudaSuccess) return;
    (void)cudaGetLastError();  // clear a non-sticky error so later calls do not report it again
    fail(where, std::string(call) + " failed: " + cudaGetErrorName(status) + " (" + cudaGetErrorString(status) + ")" +
                    (status == cudaErrorMemoryAllocation ? ": out of device memory" : ""));
}

// Throws diffuse::error when this process sees no CUDA device (checked once, then remembered).
inline void require_cuda_device(const char* where) {
    static const int devices = [] {
        int n = 0;
        if (cudaGetDeviceCount(&n) != cudaSuccess) {
            (void)cudaGetLastError();
            n = 0;
        }
        return n;
    }();
    if (devices == 0)
        fail(where, "no CUDA device is present (cudaGetDeviceCount found none, or the driver is missing): device "
                    "memory cannot be used");
}

[[nodiscard]] inline void* raw_device_allocate(std::size_t bytes, const char* where) {
    require_cuda_device(where);
    if (bytes == 0) return nullptr;
    void* p = nullptr;  // (cudaMalloc is allowed inside a capture in cudaStreamCaptureModeRelaxed, which graph.hpp uses)
    cuda_check(cudaMalloc(&p, bytes), where, "cudaMalloc of " + std::to_string(bytes) + " bytes");
    return p;
}
inline void raw_device_free(void* p) noexcept {
    if (p != nullptr) (void)cudaFree(p);
}
// A synchronous copy outside any capture (cudaMemcpyDefault: unified addressing tells the direction).
inline void raw_copy(void* dst, const void* src, std::size_t bytes, const char* where) {
    if (bytes != 0) cuda_check(cudaMemcpy(dst, src, bytes, cudaMemcpyDefault), where, "cudaMemcpy");
}

inline cudaStream_t& current_stream_slot() noexcept {
    thread_local cudaStream_t stream = nullptr;  // the legacy default stream
    return stream;
}
[[nodiscard]] inline cudaStream_t current_stream() noexcept { return current_stream_slot(); }

// Per-thread resources that must exist before a capture begins, since making them inside one is not safe
// (cuBLAS's handle: cublasCreate's own allocations and calls). A header owning such a resource registers its
// creation once (register_capture_preparation, during static initialisation); capture_graph runs them all on
// the capturing thread before cudaStreamBeginCapture.
using capture_preparation = void (*)(const char* where);
[[nodiscard]] inline std::vector<capture_preparation>& capture_preparations() {
    static std::vector<capture_preparation> preparations;
    return preparations;
}
inline bool register_capture_preparation(capture_preparation f) {
    capture_preparations().push_back(f);
    return true;
}
#endif

// The graphs alive in this process (each recording is one, from its capture to its graph's end) and the device
// buffers regrown while any was (grow_buffer, cuda/memory.hpp): a graph may use them, so they are freed with
// the last graph.
class live_graphs {
public:
    [[nodiscard]] static bool exist() {
        const std::lock_guard<std::mutex> lock(get().mutex_);
        return get().count_ > 0;
    }
    static void keep(void* p) {
        if (p == nullptr) return;
        const std::lock_guard<std::mutex> lock(get().mutex_);
        get().kept_.push_back(p);
    }
    static void add() {
        const std::lock_guard<std::mutex> lock(get().mutex_);
        ++get().count_;
    }
    static void remove() noexcept {
        std::vector<void*> release;
        {
            const std::lock_guard<std::mutex> lock(get().mutex_);
            if (--get().count_ == 0) release.swap(get().kept_);
        }
        for (void* p : release) raw_device_free(p);
    }

private:
    static live_graphs& get() {
        static live_graphs g;
        return g;
    }
    std::mutex mutex_;
    std::size_t count_ = 0;
    std::vector<void*> kept_;
};

// What a capture records besides its kernels, owned by the graph it becomes (see the header comment).
class graph_recording {
public:
    graph_recording() { live_graphs::add(); }
    graph_recording(const graph_recording&) = delete;
    graph_recording& operator=(const graph_recording&) = delete;
    ~graph_recording() {
        for (auto& c : constants_) raw_device_free(c.device);
        for (auto& c : slots_) raw_device_free(c.device);
        for (void* p : owned_) raw_device_free(p);
        live_graphs::remove();
    }

    // This thread's recording while a capture records, else null.
    [[nodiscard]] static graph_recording*& active() noexcept {
        thread_local graph_recording* recording = nullptr;
        return recording;
    }

    // The device address of a copy of `bytes` host bytes, valid in every replay (uploaded by upload_constants).
    [[nodiscard]] void* stage_constants(const void* src, std::size_t bytes, const char* where) {
        const std::size_t need = (bytes + 15) / 16 * 16;
        if (constants_.empty() || constants_.back().host.size() - constants_.back().used < need) {
            const std::size_t size = need > chunk_bytes ? need : chunk_bytes;
            constant_chunk chunk{std::vector<unsigned char>(size), 0, nullptr};
            constants_.reserve(constants_.size() + 1);  // (nothing throws once the device memory is allocated)
            chunk.device = raw_device_allocate(size, where);
            constants_.push_back(std::move(chunk));
        }
        constant_chunk& c = constants_.back();
        if (bytes != 0) std::memcpy(c.host.data() + c.used, src, bytes);
        void* at = static_cast<unsigned char*>(c.device) + c.used;
        c.used += need;
        return at;
    }

    // `bytes` of device memory the graph owns (its temporaries: what the per-thread scratch is outside a capture).
    [[nodiscard]] void* temporary(std::size_t bytes, const char* where) {
        owned_.reserve(owned_.size() + 1);  // (nothing throws once the memory is allocated)
        owned_.push_back(raw_device_allocate(bytes, where));
        return owned_.back();
    }

    // A device slot the recorded work writes; after each replay `check(value)` runs, in recording order.
    [[nodiscard]] unsigned long long* check_slot(std::function<void(unsigned long long)> check, const char* where) {
        checks_.reserve(checks_.size() + 1);
        if (slots_.empty() || slots_.back().used == slots_per_chunk) {
            slots_.reserve(slots_.size() + 1);
            slots_.push_back(slot_chunk{raw_device_allocate(slots_per_chunk * sizeof(unsigned long long), where), 0});
        }
        checks_.push_back(std::move(check));
        return static_cast<unsigned long long*>(slots_.back().device) + slots_.back().used++;
    }

    // The device slot the recorded noise of seed `seed` reads its seed from (one per distinct seed; holds
    // `seed` until set_seed changes it).
    [[nodiscard]] const std::uint64_t* seed_slot(std::uint64_t seed, const char* where) {
        for (const auto& s : seeds_)
            if (s.captured == seed) return s.device;
        seeds_.reserve(seeds_.size() + 1);
        auto* device = static_cast<std::uint64_t*>(stage_constants(&seed, sizeof seed, where));
        seeds_.push_back(seed_entry{seed, device});
        return device;
    }
    // Replays from now on draw the noise captured with seed `captured` with seed `now` instead.
    void set_seed(std::uint64_t captured, std::uint64_t now, const char* where) {
        for (const auto& s : seeds_)
            if (s.captured == captured) return raw_copy(s.device, &now, sizeof now, where);
        fail(where, "the capture drew no noise with seed " + std::to_string(captured));
    }

    // A device_free inside the capture: kept until the graph is destroyed.
    void defer_free(void* p) noexcept {
        if (p == nullptr) return;
        try {
            owned_.push_back(p);
        } catch (...) {  // out of host memory while recording: leak the buffer rather than free what the graph uses
        }
    }

    // Once, when the capture has ended: the staged constants to the device.
    void upload_constants(const char* where) const {
        for (const auto& c : constants_) raw_copy(c.device, c.host.data(), c.used, where);
    }

    // After a replay has finished: the slots back in one copy per chunk, then each check in order (the first
    // that fails throws, as the run would have stopped there).
    void run_checks(const char* where) const {
        std::vector<unsigned long long> values(checks_.size());
        std::size_t k = 0;
        for (const auto& c : slots_) {
            raw_copy(values.data() + k, c.device, c.used * sizeof(unsigned long long), where);
            k += c.used;
        }
        for (std::size_t i = 0; i < checks_.size(); ++i) checks_[i](values[i]);
    }

    [[nodiscard]] std::size_t checks() const noexcept { return checks_.size(); }

#if defined(DIFFUSE_CUDA_ON_HOST)
    void record(std::function<void()> op) { operations_.push_back(std::move(op)); }
    void replay_operations() const {
        for (const auto& op : operations_) op();
    }
    [[nodiscard]] std::size_t operations() const noexcept { return operations_.size(); }
#endif

private:
    static constexpr std::size_t chunk_bytes = 64 * 1024, slots_per_chunk = 512;
    struct constant_chunk {
        std::vector<unsigned char> host;
        std::size_t used = 0;
        void* device = nullptr;
    };
    struct slot_chunk {
        void* device = nullptr;
        std::size_t used = 0;
    };
    struct seed_entry {
        std::uint64_t captured;
        std::uint64_t* device;  // in the constants
    };
    std::vector<constant_chunk> constants_;
    std::vector<seed_entry> seeds_;
    std::vector<slot_chunk> slots_;
    std::vector<std::function<void(unsigned long long)>> checks_;
    std::vector<void*> owned_;
#if defined(DIFFUSE_CUDA_ON_HOST)
    std::vector<std::function<void()>> operations_;
#endif
};

#if defined(DIFFUSE_CUDA_ON_HOST)
// Host-run device work: now, or recorded while a capture records.
template <class Op>
void run_or_record(Op&& op) {
    if (graph_recording* r = graph_recording::active()) r->record(std::function<void()>(std::forward<Op>(op)));
    else op();
}
#endif

// The error of an operation a capture cannot record.
[[noreturn]] inline void fail_in_capture(const char* where, std::string_view what) {
    fail(where, std::string(what) + ", which cannot happen while a CUDA graph is being captured "
                                    "(diffuse::capture_graph): do it outside the capture");
}

}  // namespace diffuse::detail
