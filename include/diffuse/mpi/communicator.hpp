#pragma once
// The MPI layer's one contact with MPI: a communicator over the C API (so OpenMPI and MPICH both serve),
// every call checked, and the two collective steps the sharded algorithms are built from.
//
//   diffuse::mpi::environment env(argc, argv);   // MPI_Init unless already initialised; MPI_Finalize
//   diffuse::mpi::communicator comm;              // MPI_COMM_WORLD (or any MPI_Comm)
//   comm.agree(local_error);                      // collective: every rank throws if any rank failed
//
// Errors. The communicator switches its MPI_Comm to MPI_ERRORS_RETURN, so a failing MPI call returns to
// us and becomes diffuse::error naming the call and MPI's reason. A failure of our own code on one rank
// (a model error, a full disk) is not an MPI failure: the sharded algorithms catch it, carry on to the
// next collective step and call agree(), where every rank learns of it — each rank then throws
// diffuse::error with the message of the lowest failing rank ("mpi: rank 1 of 3 failed: …"). No rank is
// left waiting for a partner that has given up, and no rank reports success while another failed.
//
// Messages of any size: send/recv move bytes in pieces of at most 2^30 (MPI counts are int).

#include <mpi.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "diffuse/core/error.hpp"

namespace diffuse::mpi {

namespace detail {
// Throws diffuse::error unless an MPI call returned MPI_SUCCESS.
inline void check(int rc, const char* call) {
    if (rc == MPI_SUCCESS) return;
    char reason[MPI_MAX_ERROR_STRING] = {};
    int len = 0;
    MPI_Error_string(rc, reason, &len);
    diffuse::detail::fail("mpi", std::string(call) + " failed: " + std::string(reason, std::size_t(std::max(len, 0))));
}
inline constexpr std::size_t max_piece = std::size_t{1} << 30;  // bytes per MPI message piece
}  // namespace detail

// MPI_Init_thread (funneled: only the thread that initialised MPI calls it) unless MPI is initialised
// already; MPI_Finalize on destruction if this object initialised it.
class environment {
public:
    environment(int& argc, char**& argv) { init(&argc, &argv); }
    environment() { init(nullptr, nullptr); }
    environment(const environment&) = delete;
    environment& operator=(const environment&) = delete;
    ~environment() {
        int finalized = 0;
        if (owner_ && MPI_Finalized(&finalized) == MPI_SUCCESS && !finalized) MPI_Finalize();
    }

private:
    void init(int* argc, char*** argv) {
        int done = 0;
        detail::check(MPI_Initialized(&done), "MPI_Initialized");
        if (done) return;
        int provided = 0;
        detail::check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
        owner_ = true;
    }
    bool owner_ = false;
};

class communicator {
public:
    explicit communicator(MPI_Comm comm = MPI_COMM_WORLD) : comm_(comm) {
        int init = 0;
        detail::check(MPI_Initialized(&init), "MPI_Initialized");
        if (!init) diffuse::detail::fail("mpi", "MPI is not initialised (make a diffuse::mpi::environment first)");
        detail::check(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
        int r = 0, s = 0;
        detail::check(MPI_Comm_rank(comm_, &r), "MPI_Comm_rank");
        detail::check(MPI_Comm_size(comm_, &s), "MPI_Comm_size");
        rank_ = std::size_t(r);
        size_ = std::size_t(s);
    }
    [[nodiscard]] std::size_t rank() const noexcept { return rank_; }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] MPI_Comm native() const noexcept { return comm_; }

    // Collective. Every rank passes its own failure (empty: none); if any rank failed, every rank throws
    // diffuse::error with the lowest failing rank's message.
    void agree(const std::optional<std::string>& failure) const {
        const int mine = failure ? 1 : 0;
        std::vector<int> flags(size_);
        detail::check(MPI_Allgather(&mine, 1, MPI_INT, flags.data(), 1, MPI_INT, comm_), "MPI_Allgather");
        const auto first = std::find(flags.begin(), flags.end(), 1);
        if (first == flags.end()) return;
        const int root = int(first - flags.begin());
        std::string text = std::size_t(root) == rank_ ? *failure : std::string();
        broadcast(text, std::size_t(root));
        diffuse::detail::fail("mpi", "rank " + std::to_string(root) + " of " + std::to_string(size_) + " failed: " + text);
    }

    // Collective: `text` on every rank becomes root's.
    void broadcast(std::string& text, std::size_t root) const {
        std::uint64_t n = text.size();
        detail::check(MPI_Bcast(&n, 1, MPI_UINT64_T, int(root), comm_), "MPI_Bcast");
        text.resize(std::size_t(n));
        broadcast_bytes(std::span<unsigned char>(reinterpret_cast<unsigned char*>(text.data()), text.size()), root);
    }
    template <class T>
        requires std::is_trivially_copyable_v<T>
    void broadcast(T& value, std::size_t root) const {
        broadcast_bytes(std::span<unsigned char>(reinterpret_cast<unsigned char*>(&value), sizeof(T)), root);
    }
    // Collective: `values` on every rank becomes root's (size and contents).
    template <class T>
        requires std::is_trivially_copyable_v<T>
    void broadcast(std::vector<T>& values, std::size_t root) const {
        std::uint64_t n = values.size();
        detail::check(MPI_Bcast(&n, 1, MPI_UINT64_T, int(root), comm_), "MPI_Bcast");
        values.resize(std::size_t(n));
        broadcast_bytes(std::span<unsigned char>(reinterpret_cast<unsigned char*>(values.data()), values.size() * sizeof(T)), root);
    }

    // Point to point, in pieces of at most 2^30 bytes; the receiver must expect exactly the bytes sent.
    void send(std::span<const unsigned char> bytes, std::size_t to, int tag) const {
        for (std::size_t at = 0; at < bytes.size() || at == 0; at += detail::max_piece) {
            const std::size_t n = std::min(detail::max_piece, bytes.size() - at);
            detail::check(MPI_Send(bytes.data() + at, int(n), MPI_BYTE, int(to), tag, comm_), "MPI_Send");
            if (bytes.empty()) break;
        }
    }
    void recv(std::span<unsigned char> bytes, std::size_t from, int tag) const {
        for (std::size_t at = 0; at < bytes.size() || at == 0; at += detail::max_piece) {
            const std::size_t n = std::min(detail::max_piece, bytes.size() - at);
            MPI_Status st;
            detail::check(MPI_Recv(bytes.data() + at, int(n), MPI_BYTE, int(from), tag, comm_, &st), "MPI_Recv");
            int got = 0;
            detail::check(MPI_Get_count(&st, MPI_BYTE, &got), "MPI_Get_count");
            if (std::size_t(got) != n)
                diffuse::detail::fail("mpi", "rank " + std::to_string(from) + " sent " + std::to_string(got) +
                                                 " bytes where " + std::to_string(n) + " were expected");
            if (bytes.empty()) break;
        }
    }
    template <class T>
    void send(std::span<const T> values, std::size_t to, int tag) const {
        send(std::span<const unsigned char>(reinterpret_cast<const unsigned char*>(values.data()), values.size_bytes()), to, tag);
    }
    template <class T>
    void recv(std::span<T> values, std::size_t from, int tag) const {
        recv(std::span<unsigned char>(reinterpret_cast<unsigned char*>(values.data()), values.size_bytes()), from, tag);
    }

    // Collective: the largest of every rank's value (exact, so the order of the reduction does not matter).
    [[nodiscard]] std::uint64_t max(std::uint64_t value) const {
        std::uint64_t out = 0;
        detail::check(MPI_Allreduce(&value, &out, 1, MPI_UINT64_T, MPI_MAX, comm_), "MPI_Allreduce");
        return out;
    }

    void barrier() const { detail::check(MPI_Barrier(comm_), "MPI_Barrier"); }

private:
    void broadcast_bytes(std::span<unsigned char> bytes, std::size_t root) const {
        for (std::size_t at = 0; at < bytes.size(); at += detail::max_piece) {
            const std::size_t n = std::min(detail::max_piece, bytes.size() - at);
            detail::check(MPI_Bcast(bytes.data() + at, int(n), MPI_BYTE, int(root), comm_), "MPI_Bcast");
        }
    }

    MPI_Comm comm_;
    std::size_t rank_ = 0, size_ = 1;
};

// The message of the exception being handled, for communicator::agree (call inside a catch block).
[[nodiscard]] inline std::string current_failure() {
    try {
        throw;
    } catch (const std::exception& e) {
        return std::string(diffuse::detail::error_text(e));
    } catch (...) {
        return "an exception that is not a std::exception";
    }
}

}  // namespace diffuse::mpi
