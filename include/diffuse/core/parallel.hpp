#pragma once
// The host thread pool behind the primitives. Work is always cut into the same pieces whatever the
// thread count, so results (reductions included) are bitwise identical for any number of threads.
//
//   diffuse::set_num_threads(4);   // 0 = std::thread::hardware_concurrency(); default 1; at most max_num_threads()
//
// Only tensors of at least detail::parallel_threshold elements are split; smaller ones run inline.

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "diffuse/core/error.hpp"

namespace diffuse {
namespace detail {

inline constexpr std::size_t parallel_threshold = std::size_t(1) << 18;  // elements
inline constexpr std::size_t parallel_grain = std::size_t(1) << 16;      // elements per task

// How for_each_segment splits a tensor: not below `threshold` elements, in pieces of `grain` elements.
// The default suits memory-bound work (lincomb: a few cycles per element); compute-bound work (the
// normal generator: about 1.3 ns per element and thread) repays the hand-off at smaller sizes.
struct segment_policy {
    std::size_t threshold = parallel_threshold;
    std::size_t grain = parallel_grain;
};
inline constexpr segment_policy compute_bound_segments{std::size_t(1) << 15, std::size_t(1) << 14};

class thread_pool {
public:
    static thread_pool& instance() {
        static thread_pool pool;
        return pool;
    }
    thread_pool(const thread_pool&) = delete;
    thread_pool& operator=(const thread_pool&) = delete;
    ~thread_pool() { resize(1); }

    [[nodiscard]] unsigned threads() const noexcept { return threads_.load(); }

    // n threads in all (the caller's included). When the system refuses to start a thread, the pool goes back
    // to the count it had and the std::system_error propagates.
    void resize(unsigned n) {
        std::lock_guard run_lock(run_mutex_);
        const unsigned previous = threads_;
        stop_workers();
        try {
            start_workers(std::max(1u, n));
        } catch (...) {
            stop_workers();
            try {
                start_workers(previous);
            } catch (...) {
                stop_workers();  // not even the old count: one thread, which needs no worker
            }
            throw;
        }
    }

    // Calls f(i) for every i in [0, n) and returns when all are done. The calling thread works too.
    // Re-entrant calls (from inside f) and calls with one thread run serially in order.
    void run(std::size_t n, const std::function<void(std::size_t)>& f) {
        if (n == 0) return;
        if (threads_ == 1 || n == 1 || in_worker()) {
            for (std::size_t i = 0; i < n; ++i) f(i);
            return;
        }
        std::lock_guard run_lock(run_mutex_);
        {
            std::lock_guard lock(mutex_);
            job_ = &f;
            size_ = n;
            next_ = 0;
            pending_ = n;
            error_ = nullptr;
            ++generation_;
        }
        wake_.notify_all();
        work();
        std::unique_lock lock(mutex_);
        done_.wait(lock, [&] { return pending_ == 0 && active_ == 0; });  // no worker still inside work()
        job_ = nullptr;
        if (error_) std::rethrow_exception(error_);
    }

private:
    thread_pool() = default;

    // Joins every worker; afterwards the pool has one thread (the caller's).
    void stop_workers() {
        {
            std::lock_guard lock(mutex_);
            stop_ = true;
        }
        wake_.notify_all();
        for (auto& w : workers_) w.join();
        workers_.clear();
        stop_ = false;
        threads_ = 1;
    }
    void start_workers(unsigned n) {
        workers_.reserve(n - 1);
        while (workers_.size() + 1 < n) workers_.emplace_back([this] { worker(); });
        threads_ = n;
    }

    static bool& in_worker() {
        thread_local bool flag = false;
        return flag;
    }

    void work() {
        in_worker() = true;
        for (;;) {
            const std::size_t i = next_.fetch_add(1);
            if (i >= size_) break;
            try {
                (*job_)(i);
            } catch (...) {
                std::lock_guard lock(mutex_);
                if (!error_) error_ = std::current_exception();
            }
            std::lock_guard lock(mutex_);
            if (--pending_ == 0) done_.notify_all();
        }
        in_worker() = false;
    }

    void worker() {
        std::size_t seen = 0;
        for (;;) {
            {
                std::unique_lock lock(mutex_);
                wake_.wait(lock, [&] { return stop_ || (job_ && generation_ != seen); });
                if (stop_) return;
                seen = generation_;
                ++active_;
            }
            work();
            std::lock_guard lock(mutex_);
            if (--active_ == 0) done_.notify_all();
        }
    }

    std::mutex run_mutex_;  // one parallel region at a time
    std::mutex mutex_;
    std::condition_variable wake_, done_;
    std::vector<std::thread> workers_;
    std::atomic<unsigned> threads_{1};
    const std::function<void(std::size_t)>* job_ = nullptr;
    std::size_t size_ = 0, pending_ = 0, generation_ = 0, active_ = 0;
    std::atomic<std::size_t> next_{0};
    std::exception_ptr error_;
    bool stop_ = false;
};

// Calls f(b, begin, end) over every sample b and element range [begin, end) of that sample,
// covering batch × per_sample exactly once. Large tensors are cut into fixed grain-sized pieces.
template <class F>
void for_each_segment(std::size_t batch, std::size_t per_sample, F&& f, segment_policy policy = {}) {
    const std::size_t total = batch * per_sample;
    auto& pool = thread_pool::instance();
    if (pool.threads() == 1 || total < policy.threshold) {
        for (std::size_t b = 0; b < batch; ++b) f(b, std::size_t(0), per_sample);
        return;
    }
    const std::size_t grain = policy.grain;
    const std::size_t pieces = (per_sample + grain - 1) / grain;
    pool.run(batch * pieces, [&](std::size_t i) {
        const std::size_t b = i / pieces, p = i % pieces;
        f(b, p * grain, std::min(per_sample, (p + 1) * grain));
    });
}

}  // namespace detail

// The most host threads set_num_threads accepts: 64 per hardware thread, and never fewer than 1024. Beyond
// that a count is a mistake (−1 converted to 4294967295, say), not a machine.
[[nodiscard]] inline unsigned max_num_threads() {
    return std::max(1024u, 64u * std::max(1u, std::thread::hardware_concurrency()));
}

// Sets the number of host threads the primitives may use (0: all hardware threads). A count above
// max_num_threads() throws diffuse::error and leaves the current count as it was.
inline void set_num_threads(unsigned n) {
    detail::require(n <= max_num_threads(), "set_num_threads", "n", n,
                    "[0, " + std::to_string(max_num_threads()) + "] (0 = all " +
                        std::to_string(std::thread::hardware_concurrency()) +
                        " hardware threads; the bound is max(1024, 64 x hardware threads))");
    if (n == 0) n = std::max(1u, std::thread::hardware_concurrency());
    if (n != detail::thread_pool::instance().threads()) detail::thread_pool::instance().resize(n);
}

[[nodiscard]] inline unsigned num_threads() { return detail::thread_pool::instance().threads(); }

}  // namespace diffuse
