#pragma once
// Whole-file reading and writing for the io readers and writers (npy, json, safetensors).
//
// Reading is bounded: read_file(path, max_bytes) never reads, nor allocates, more than max_bytes + 1 bytes,
// whatever the file is — a regular file is measured first (and one larger than max_bytes is refused without
// being read), a pipe, FIFO or character device such as /dev/zero is read in chunks of at most 1 MiB, so the
// memory used grows with the bytes that really arrive, and is refused as soon as it passes max_bytes. A
// directory is refused. detail::bounded_input gives the same bounded reads piece by piece, for formats
// whose header declares the size of the rest (.npy).
//
// Writing is all or nothing: write_file(path, parts) writes to a new temporary file in the folder of
// `path` (".<name>.tmp-<pid>-<n>"), checks every write, the flush, the sync to disk (POSIX fsync) and
// the close, and only then renames it onto `path` (an atomic replacement on POSIX). On any failure the
// temporary is removed and diffuse::error is thrown naming the file and the system's reason; `path`
// then holds what it held before (or still does not exist). file_writer does the same piece by piece
// (a file streamed as it is computed), and separates finishing from publishing, so that several
// outputs can all be finished before any of them appears. An existing file keeps its permission bits;
// a symbolic link to an existing file is followed, the file it names is replaced.
// A target that exists and is not a regular file or a directory — a character device such as /dev/null,
// /dev/full or /dev/stdout, a FIFO — cannot be replaced by a rename: it is written directly, with the
// same checks, so a failure (ENOSPC on /dev/full, EPIPE) is still an error, though bytes before it may
// have reached the device. A directory is refused.

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "diffuse/core/error.hpp"

#if defined(__unix__) || defined(__APPLE__)
#define DIFFUSE_IO_FILE_POSIX 1
#include <unistd.h>
#else
#define DIFFUSE_IO_FILE_POSIX 0
#endif

namespace diffuse::io {

namespace detail {

// An input file read in bounded pieces: append(out, n) adds at most n bytes, growing `out` in chunks as the
// bytes arrive, so a size claimed by the file is never allocated before the file has delivered it.
class bounded_input {
public:
    static constexpr std::size_t chunk_bytes = std::size_t{1} << 20;

    bounded_input(const std::string& path, std::string_view where) : path_(path), where_(where) {
        namespace fs = std::filesystem;
        std::error_code ec;
        const auto status = fs::status(path, ec);
        if (fs::is_directory(status)) diffuse::detail::fail(where_, path_ + " is a directory, not a file");
        if (fs::is_regular_file(status)) {
            const auto size = fs::file_size(path, ec);
            if (!ec) regular_size_ = size;
        }
        f_.open(path, std::ios::binary);
        if (!f_) diffuse::detail::fail(where_, "cannot open " + path_ + (ec ? ": " + ec.message() : std::string()));
    }

    // The size of a regular file, measured when it was opened; nullopt for a pipe, FIFO or device.
    [[nodiscard]] std::optional<std::uint64_t> regular_size() const noexcept { return regular_size_; }
    [[nodiscard]] const std::string& path() const noexcept { return path_; }

    // Appends up to n bytes to `out`; returns how many were appended (fewer than n only at the end of the file).
    std::uint64_t append(std::vector<unsigned char>& out, std::uint64_t n) {
        if (regular_size_) {  // one allocation for what the file can still deliver
            const std::uint64_t left = *regular_size_ > consumed_ ? *regular_size_ - consumed_ : 0;
            if (const std::uint64_t expect = n < left ? n : left; expect <= out.max_size() - out.size())
                out.reserve(out.size() + std::size_t(expect));
        }
        std::uint64_t got = 0;
        while (got < n) {
            const std::size_t want = n - got < chunk_bytes ? std::size_t(n - got) : chunk_bytes;
            const std::size_t old = out.size();
            out.resize(old + want);
            f_.read(reinterpret_cast<char*>(out.data() + old), std::streamsize(want));
            const auto read = static_cast<std::size_t>(f_.gcount());
            out.resize(old + read);
            got += read;
            if (read < want) {
                if (f_.bad()) diffuse::detail::fail(where_, "cannot read " + path_ + ": " + std::strerror(errno));
                break;
            }
        }
        consumed_ += got;
        return got;
    }

    // True when the file has no byte left.
    [[nodiscard]] bool at_end() {
        const bool end = f_.peek() == std::char_traits<char>::eof();
        if (f_.bad()) diffuse::detail::fail(where_, "cannot read " + path_ + ": " + std::strerror(errno));
        return end;
    }

private:
    std::string path_;
    std::string_view where_;
    std::ifstream f_;
    std::optional<std::uint64_t> regular_size_;
    std::uint64_t consumed_ = 0;
};

[[nodiscard]] inline std::string system_reason() { return std::strerror(errno); }

// A FILE* closed on scope exit (unless close() already did, reporting the result).
struct c_file {
    std::FILE* f = nullptr;
    c_file() = default;
    c_file(const c_file&) = delete;
    c_file& operator=(const c_file&) = delete;
    ~c_file() {
        if (f) std::fclose(f);
    }
    void reset() {
        if (f) std::fclose(f);
        f = nullptr;
    }
    // fclose's result: false when the final flush or the close failed (errno says why).
    bool close() {
        const int r = std::fclose(f);
        f = nullptr;
        return r == 0;
    }
};

[[nodiscard]] inline unsigned long process_id() noexcept {
#if DIFFUSE_IO_FILE_POSIX
    return static_cast<unsigned long>(::getpid());
#else
    return 0;
#endif
}

}  // namespace detail

// The whole file at `path`, at most max_bytes of it (more is an error naming the limit); see the top of
// this header for what is read from pipes and devices.
[[nodiscard]] inline std::vector<unsigned char> read_file(const std::string& path, std::uint64_t max_bytes,
                                                          std::string_view where = "read_file") {
    detail::bounded_input in(path, where);
    const auto limit_text = [&] { return "more than the limit of " + std::to_string(max_bytes) + " bytes"; };
    if (const auto size = in.regular_size(); size && *size > max_bytes)
        diffuse::detail::fail(where, path + " has " + std::to_string(*size) + " bytes, " + limit_text());
    std::vector<unsigned char> bytes;
    in.append(bytes, max_bytes);
    if (!in.at_end()) diffuse::detail::fail(where, path + " holds " + limit_text());
    return bytes;
}

// A file written in pieces, all or nothing: the writer creates the temporary of write_file (below), write()
// appends to it with every write checked, finish() flushes, syncs and closes it, and publish() renames it
// onto the target (calling finish() first when needed). Until publish() the target is untouched; a writer
// destroyed before publish() removes its temporary. finish() and publish() are separate so that a program
// writing several outputs can finish them all (where the I/O errors arise) before it publishes any of them.
// A target that is a device or FIFO is written in place, as write_file does.
class file_writer {
public:
    file_writer(const std::string& path, std::string_view where = "write_file") : path_(path), where_(where) {
        namespace fs = std::filesystem;
        std::error_code ec;
        target_ = fs::path(path);
        if (fs::is_symlink(fs::symlink_status(target_, ec))) {
            target_ = fs::weakly_canonical(target_, ec);
            if (ec) diffuse::detail::fail(where_, "cannot resolve the link " + path_ + ": " + ec.message());
        }
        status_ = fs::status(target_, ec);
        if (fs::is_directory(status_)) diffuse::detail::fail(where_, "cannot write " + path_ + ": it is a directory");
        if (fs::exists(status_) && !fs::is_regular_file(status_)) {  // a device or FIFO: written in place
            in_place_ = true;
            out_.f = std::fopen(target_.string().c_str(), "wb");
            if (!out_.f) diffuse::detail::fail(where_, "cannot open " + path_ + " for writing: " + detail::system_reason());
            return;
        }
        static std::atomic<unsigned long> counter{0};
        const fs::path folder = target_.parent_path();
        std::string stem = ".";  // appended piece by piece: GCC 12's -Wrestrict misfires on "." + std::string&&
        stem += target_.filename().string();
        stem += ".tmp-";
        stem += std::to_string(detail::process_id());
        stem += '-';
        for (int attempt = 0; attempt < 100 && !out_.f; ++attempt) {
            temp_ = folder / (stem + std::to_string(counter.fetch_add(1)));
            out_.f = std::fopen(temp_.string().c_str(), "wbx");  // "x": never an existing file (C11 exclusive mode)
            if (!out_.f && errno != EEXIST) break;
        }
        if (!out_.f)
            diffuse::detail::fail(where_, "cannot create a temporary file next to " + path_ + " (" + temp_.string() +
                                              "): " + detail::system_reason());
    }
    file_writer(const file_writer&) = delete;
    file_writer& operator=(const file_writer&) = delete;
    ~file_writer() {
        if (!published_ && !in_place_ && !temp_.empty()) {
            out_.reset();
            std::error_code ignored;
            std::filesystem::remove(temp_, ignored);
        }
    }

    [[nodiscard]] const std::string& path() const noexcept { return path_; }

    // Appends the parts (checked: a short write is an error naming the file and the system's reason).
    void write(std::span<const std::span<const unsigned char>> parts) {
        if (!out_.f) diffuse::detail::fail(where_, path_ + ": written after it was finished");
        for (const auto& part : parts)
            if (!part.empty() && std::fwrite(part.data(), 1, part.size(), out_.f) != part.size())
                diffuse::detail::fail(where_, "cannot write " + path_ + ": " + detail::system_reason());
    }
    void write(std::span<const unsigned char> bytes) {
        const std::span<const unsigned char> parts[] = {bytes};
        write(parts);
    }
    // Overwrites bytes already written at `offset` (a header completed at the end); not for devices.
    void write_at(std::uint64_t offset, std::span<const unsigned char> bytes) {
        if (!out_.f || in_place_) diffuse::detail::fail(where_, path_ + ": cannot rewrite a finished file or a device");
        const auto here = std::ftell(out_.f);
        if (here < 0 || std::fseek(out_.f, static_cast<long>(offset), SEEK_SET) != 0)
            diffuse::detail::fail(where_, "cannot seek in " + path_ + ": " + detail::system_reason());
        write(bytes);
        if (std::fseek(out_.f, here, SEEK_SET) != 0) diffuse::detail::fail(where_, "cannot seek in " + path_ + ": " + detail::system_reason());
    }

    // Flushes, syncs (regular files, POSIX) and closes the file; every failure is an error.
    void finish() {
        if (!out_.f) return;
        if (std::fflush(out_.f) != 0) diffuse::detail::fail(where_, "cannot write " + path_ + ": " + detail::system_reason());
#if DIFFUSE_IO_FILE_POSIX
        if (!in_place_ && ::fsync(::fileno(out_.f)) != 0)
            diffuse::detail::fail(where_, "cannot sync " + path_ + " to disk: " + detail::system_reason());
#endif
        if (!out_.close()) diffuse::detail::fail(where_, "cannot write " + path_ + ": " + detail::system_reason());
    }

    // finish(), then the rename onto the target: the file appears complete or not at all.
    void publish() {
        finish();
        if (in_place_ || published_) {
            published_ = true;
            return;
        }
        namespace fs = std::filesystem;
        std::error_code ec;
        if (fs::is_regular_file(status_)) fs::permissions(temp_, status_.permissions(), ec);  // best effort
        fs::rename(temp_, target_, ec);
        if (ec) diffuse::detail::fail(where_, "cannot rename " + temp_.string() + " onto " + path_ + ": " + ec.message());
        published_ = true;
    }

private:
    std::string path_;
    std::string_view where_;
    std::filesystem::path target_, temp_;
    std::filesystem::file_status status_;
    detail::c_file out_;
    bool in_place_ = false, published_ = false;
};

// Writes the concatenation of `parts` to `path`: afterwards the file holds exactly those bytes, or an
// error was thrown and it holds what it held before (the top of this header says how, and what happens
// for devices and FIFOs).
inline void write_file(const std::string& path, std::span<const std::span<const unsigned char>> parts,
                       std::string_view where = "write_file") {
    file_writer out(path, where);
    out.write(parts);
    out.publish();
}

// The same for one block of bytes.
inline void write_file(const std::string& path, std::span<const unsigned char> bytes, std::string_view where = "write_file") {
    const std::span<const unsigned char> parts[] = {bytes};
    write_file(path, parts, where);
}

}  // namespace diffuse::io
