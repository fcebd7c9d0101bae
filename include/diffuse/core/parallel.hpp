#pragma once
// The host thread pool behind the primitives. Work is always cut into the same pieces whatever the
// thread count, so results (reductions included) are bitwise identical for any number of threads.
//
//   diffuse::set_num_threads(4);   // 0 = std::thread::hardware_concurrency(); default 1
//
// Only tensors of at least detail::parallel_threshold elements are split; smaller ones run inline.

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace diffuse {
namespace detail {

inline constexpr std::size_t parallel_threshold = std::size_t(1) << 18;  // elements
inline constexpr std::size_t parallel_grain = std::size_t(1) << 16;      // elements per task

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

    void resize(unsigned n) {
        std::lock_guard run_lock(run_mutex_);
        {
            std::lock_guard lock(mutex_);
            stop_ = true;
        }
        wake_.notify_all();
        for (auto& w : workers_) w.join();
        workers_.clear();
        stop_ = false;
        threads_ = std::max(1u, n);
        for (unsigned i = 1; i < threads_; ++i) workers_.emplace_back([this] { worker(); });
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
void for_each_segment(std::size_t batch, std::size_t per_sample, F&& f) {
    const std::size_t total = batch * per_sample;
    auto& pool = thread_pool::instance();
    if (pool.threads() == 1 || total < parallel_threshold) {
        for (std::size_t b = 0; b < batch; ++b) f(b, std::size_t(0), per_sample);
        return;
    }
    const std::size_t pieces = (per_sample + parallel_grain - 1) / parallel_grain;
    pool.run(batch * pieces, [&](std::size_t i) {
        const std::size_t b = i / pieces, p = i % pieces;
        f(b, p * parallel_grain, std::min(per_sample, (p + 1) * parallel_grain));
    });
}

}  // namespace detail

// Sets the number of host threads the primitives may use (0: all hardware threads).
inline void set_num_threads(unsigned n) {
    if (n == 0) n = std::max(1u, std::thread::hardware_concurrency());
    if (n != detail::thread_pool::instance().threads()) detail::thread_pool::instance().resize(n);
}

[[nodiscard]] inline unsigned num_threads() { return detail::thread_pool::instance().threads(); }

}  // namespace diffuse
