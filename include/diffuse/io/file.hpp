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
// then holds what it held before (or still does not exist). An existing file keeps its permission bits;
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
    // fclose's result: false when the final flush or the close failed (errno says why).
    bool close() {
        const int r = std::fclose(f);
        f = nullptr;
        return r == 0;
    }
};

// Writes every part to `out` and flushes it to the system (and, for a regular file on POSIX, to the disk);
// names `path` and the system's reason on the first failure.
inline void write_parts(std::FILE* out, std::span<const std::span<const unsigned char>> parts, const std::string& path,
                        std::string_view where, bool sync) {
    for (const auto& part : parts)
        if (!part.empty() && std::fwrite(part.data(), 1, part.size(), out) != part.size())
            diffuse::detail::fail(where, "cannot write " + path + ": " + system_reason());
    if (std::fflush(out) != 0) diffuse::detail::fail(where, "cannot write " + path + ": " + system_reason());
#if DIFFUSE_IO_FILE_POSIX
    if (sync && ::fsync(::fileno(out)) != 0) diffuse::detail::fail(where, "cannot sync " + path + " to disk: " + system_reason());
#else
    (void)sync;
#endif
}

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

// Writes the concatenation of `parts` to `path`: afterwards the file holds exactly those bytes, or an
// error was thrown and it holds what it held before (the top of this header says how, and what happens
// for devices and FIFOs).
inline void write_file(const std::string& path, std::span<const std::span<const unsigned char>> parts,
                       std::string_view where = "write_file") {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::path target(path);
    if (fs::is_symlink(fs::symlink_status(target, ec))) {
        target = fs::weakly_canonical(target, ec);
        if (ec) diffuse::detail::fail(where, "cannot resolve the link " + path + ": " + ec.message());
    }
    const auto status = fs::status(target, ec);
    if (fs::is_directory(status)) diffuse::detail::fail(where, "cannot write " + path + ": it is a directory");

    if (fs::exists(status) && !fs::is_regular_file(status)) {  // a device or FIFO: written in place
        detail::c_file out;
        out.f = std::fopen(target.string().c_str(), "wb");
        if (!out.f) diffuse::detail::fail(where, "cannot open " + path + " for writing: " + detail::system_reason());
        detail::write_parts(out.f, parts, path, where, false);
        if (!out.close()) diffuse::detail::fail(where, "cannot write " + path + ": " + detail::system_reason());
        return;
    }

    static std::atomic<unsigned long> counter{0};
    const fs::path folder = target.parent_path();
    const std::string stem = "." + target.filename().string() + ".tmp-" + std::to_string(detail::process_id()) + "-";
    fs::path temp;
    detail::c_file out;
    for (int attempt = 0; attempt < 100 && !out.f; ++attempt) {
        temp = folder / (stem + std::to_string(counter.fetch_add(1)));
        out.f = std::fopen(temp.string().c_str(), "wbx");  // "x": never an existing file (C11 exclusive mode)
        if (!out.f && errno != EEXIST) break;
    }
    if (!out.f)
        diffuse::detail::fail(where, "cannot create a temporary file next to " + path + " (" + temp.string() +
                                         "): " + detail::system_reason());
    struct remove_unless_renamed {
        const fs::path& temp;
        bool renamed = false;
        ~remove_unless_renamed() {
            std::error_code ignored;
            if (!renamed) fs::remove(temp, ignored);
        }
    } cleanup{temp};
    detail::write_parts(out.f, parts, path, where, true);
    if (!out.close()) diffuse::detail::fail(where, "cannot write " + path + ": " + detail::system_reason());
    if (fs::is_regular_file(status)) fs::permissions(temp, status.permissions(), ec);  // best effort
    fs::rename(temp, target, ec);
    if (ec) diffuse::detail::fail(where, "cannot rename " + temp.string() + " onto " + path + ": " + ec.message());
    cleanup.renamed = true;
}

// The same for one block of bytes.
inline void write_file(const std::string& path, std::span<const unsigned char> bytes, std::string_view where = "write_file") {
    const std::span<const unsigned char> parts[] = {bytes};
    write_file(path, parts, where);
}

}  // namespace diffuse::io
