#pragma once
// safetensors: reading (strictly validated, the file is untrusted), sharded checkpoints, writing.
//
// Layout: 8-byte little-endian header length N, N bytes of UTF-8 JSON, then the data buffer.
// The JSON maps each tensor name to {"dtype": ..., "shape": [...], "data_offsets": [begin, end]}
// (offsets relative to the buffer) and may hold "__metadata__": {string: string}.
//
// A file is accepted only when (docs/PARITY rules):
//   * N <= 100,000,000 and 8 + N <= file size; the header is strict JSON (io/json.hpp) with no
//     duplicate names and no unknown members in an entry;
//   * each dtype is a known name, each shape entry a non-negative integer, data_offsets two
//     integers begin <= end;
//   * end − begin = numel × dtype size, computed with overflow checks;
//   * sorted by offset, the entries tile the buffer from 0 with no gap or overlap, and the buffer
//     ends exactly at the end of the file.
// Any violation throws diffuse::error naming the tensor and what is wrong; no read ever leaves the
// buffer. Nothing is allocated in proportion to a size the header claims before that size has been
// checked against the real file.
//
// Storage: read_safetensors maps the file read-only (POSIX mmap, MAP_PRIVATE) and the mapping lives as
// long as any safetensors_file copy made from it; where mapping is unavailable (or fails) the file is
// read once into an owned buffer. An empty file, a file that is not a regular file, or one whose size
// changes while it is being opened is an error. As with any memory map, the file must not be truncated
// by another process while a safetensors_file made from it is alive. parse_safetensors(span) copies the
// bytes; parse_safetensors(vector&&) takes them over.
//
//   auto st = diffuse::io::read_safetensors("model.safetensors");
//   std::vector<float> w = st.as<float>("layer.weight");   // F32/F64/F16/BF16 converted
//   st.read_into(st.at("layer.bias"), std::span<float>(dst, n));   // straight into your memory
//
// Sharded checkpoints (diffusers' <stem>.safetensors.index.json next to its shards):
//   auto weights = diffuse::io::open_safetensors(diffuse::io::find_weights_file(folder));
//   weights.read_into("conv_in.weight", out);   // whichever shard holds it
//
//   diffuse::io::safetensors_writer out;  out.add("w", shape, std::span<const float>(w));  out.write(path);
// write() is all or nothing (io/file.hpp): the file is complete or an error is thrown and it is left as it was.

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "diffuse/core/error.hpp"
#include "diffuse/io/file.hpp"
#include "diffuse/io/json.hpp"

// DIFFUSE_SAFETENSORS_HAS_MMAP: 1 where POSIX mmap is used (define DIFFUSE_SAFETENSORS_NO_MMAP to force the
// owned-buffer path, e.g. to test it).
#if !defined(DIFFUSE_SAFETENSORS_NO_MMAP) && (defined(__unix__) || defined(__APPLE__))
#define DIFFUSE_SAFETENSORS_HAS_MMAP 1
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#else
#define DIFFUSE_SAFETENSORS_HAS_MMAP 0
#endif

namespace diffuse::io {

inline constexpr std::uint64_t safetensors_max_header = 100'000'000;

// Element size in bytes of a safetensors dtype name; 0 when unknown.
[[nodiscard]] inline std::size_t safetensors_dtype_size(std::string_view d) noexcept {
    if (d == "BOOL" || d == "U8" || d == "I8" || d == "F8_E4M3" || d == "F8_E5M2") return 1;
    if (d == "I16" || d == "U16" || d == "F16" || d == "BF16") return 2;
    if (d == "I32" || d == "U32" || d == "F32") return 4;
    if (d == "I64" || d == "U64" || d == "F64") return 8;
    return 0;
}

struct safetensors_entry {
    std::string name, dtype;
    std::vector<std::uint64_t> shape;
    std::uint64_t begin = 0, end = 0;  // byte offsets in the data buffer

    [[nodiscard]] std::uint64_t numel() const {
        std::uint64_t n = 1;
        for (auto s : shape) n *= s;  // validated not to overflow at parse time
        return n;
    }
};

namespace detail {

// IEEE binary16 -> binary32, exact for every pattern (subnormals, ±0, ±inf, NaN payloads kept).
[[nodiscard]] inline float half_to_float(std::uint16_t h) noexcept {
    const std::uint32_t sign = std::uint32_t(h >> 15) << 31;
    const std::uint32_t exp = (h >> 10) & 0x1F, man = h & 0x3FF;
    if (exp == 0) {  // zero or subnormal: man × 2^-24, a normal float (exact)
        const float f = float(man) * 0x1p-24f;
        return sign ? -f : f;
    }
    const std::uint32_t bits = exp == 31 ? (sign | 0x7F800000u | (man << 13))
                                         : (sign | ((exp - 15 + 127) << 23) | (man << 13));
    return std::bit_cast<float>(bits);
}
// bfloat16 is the top half of a binary32.
[[nodiscard]] inline float bf16_to_float(std::uint16_t h) noexcept {
    return std::bit_cast<float>(std::uint32_t(h) << 16);
}

// An unsigned integer stored little-endian at p (any alignment, any host byte order).
template <class U>
[[nodiscard]] U load_le(const unsigned char* p) noexcept {
    U v = 0;
    for (std::size_t i = 0; i < sizeof(U); ++i) v = static_cast<U>(v | (U(p[i]) << (8 * i)));
    return v;
}

// The read-only bytes of a file: a private memory map or an owned buffer. Shared (refcounted) by
// every safetensors_file parsed from it; the map is released with the last owner.
class byte_storage {
public:
    explicit byte_storage(std::vector<unsigned char> owned) noexcept
        : owned_(std::move(owned)), data_(owned_.data()), size_(owned_.size()) {}
    byte_storage(void* map, std::size_t size) noexcept
        : map_(map), data_(static_cast<const unsigned char*>(map)), size_(size) {}
    byte_storage(const byte_storage&) = delete;
    byte_storage& operator=(const byte_storage&) = delete;
    ~byte_storage() {
#if DIFFUSE_SAFETENSORS_HAS_MMAP
        if (map_) ::munmap(map_, size_);
#endif
    }
    [[nodiscard]] std::span<const unsigned char> bytes() const noexcept { return {data_, size_}; }
    [[nodiscard]] bool mapped() const noexcept { return map_ != nullptr; }

private:
    std::vector<unsigned char> owned_;
    void* map_ = nullptr;
    const unsigned char* data_ = nullptr;
    std::size_t size_ = 0;
};

// The whole file at `path` in one owned buffer, at most max_size bytes. Its size is taken once, the
// buffer allocated once, and a file that turns out shorter or longer than that size is rejected.
[[nodiscard]] inline std::vector<unsigned char> read_file_bytes(const std::string& path, std::string_view where,
                                                                std::uint64_t max_size) {
    std::error_code ec;  // a missing file is reported by the open below
    if (const auto status = std::filesystem::status(path, ec);
        std::filesystem::exists(status) && !std::filesystem::is_regular_file(status))
        diffuse::detail::fail(where, path + " is not a regular file");
    std::ifstream f(path, std::ios::binary | std::ios::ate);
    if (!f) diffuse::detail::fail(where, "cannot open " + path);
    const std::streamoff end = f.tellg();
    if (end < 0) diffuse::detail::fail(where, "cannot read the size of " + path);
    const auto size = static_cast<std::uint64_t>(end);
    if (size == 0) diffuse::detail::fail(where, path + " is empty");
    if (size > max_size || size > std::numeric_limits<std::size_t>::max())
        diffuse::detail::fail(where, path + " has " + std::to_string(size) + " bytes, more than the " + std::to_string(max_size) +
                        " accepted");
    std::vector<unsigned char> bytes(static_cast<std::size_t>(size));
    f.seekg(0);
    f.read(reinterpret_cast<char*>(bytes.data()), std::streamsize(bytes.size()));
    if (static_cast<std::uint64_t>(f.gcount()) != size) diffuse::detail::fail(where, path + " became shorter while being read");
    if (f.peek() != std::char_traits<char>::eof()) diffuse::detail::fail(where, path + " became longer while being read");
    return bytes;
}

#if DIFFUSE_SAFETENSORS_HAS_MMAP
// The file at `path` mapped read-only; an owned copy where mmap refuses the file.
[[nodiscard]] inline std::shared_ptr<const byte_storage> map_file(const std::string& path, std::string_view where) {
    struct fd_guard {
        int fd;
        ~fd_guard() {
            if (fd >= 0) ::close(fd);
        }
    } g{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
    if (g.fd < 0) diffuse::detail::fail(where, "cannot open " + path + ": " + std::strerror(errno));
    struct stat st {};
    if (::fstat(g.fd, &st) != 0) diffuse::detail::fail(where, "cannot stat " + path + ": " + std::strerror(errno));
    if (!S_ISREG(st.st_mode)) diffuse::detail::fail(where, path + " is not a regular file");
    if (st.st_size <= 0) diffuse::detail::fail(where, path + " is empty");
    if (static_cast<std::uintmax_t>(st.st_size) > std::numeric_limits<std::size_t>::max())
        diffuse::detail::fail(where, path + " has " + std::to_string(st.st_size) + " bytes, more than this machine can address");
    const auto size = static_cast<std::size_t>(st.st_size);
    void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, g.fd, 0);
    if (map == MAP_FAILED)
        return std::make_shared<const byte_storage>(read_file_bytes(path, where, std::numeric_limits<std::uint64_t>::max()));
    auto storage = std::make_shared<const byte_storage>(map, size);  // owns the map from here on
    struct stat again {};
    if (::fstat(g.fd, &again) != 0 || again.st_size != st.st_size)
        diffuse::detail::fail(where, path + " changed size while being opened");
    return storage;
}
#endif

// The whole file at `path`, mapped where possible.
[[nodiscard]] inline std::shared_ptr<const byte_storage> load_file(const std::string& path, std::string_view where) {
#if DIFFUSE_SAFETENSORS_HAS_MMAP
    return map_file(path, where);
#else
    return std::make_shared<const byte_storage>(read_file_bytes(path, where, std::numeric_limits<std::uint64_t>::max()));
#endif
}

}  // namespace detail

class safetensors_file;
namespace detail {
[[nodiscard]] inline safetensors_file parse_safetensors_storage(std::shared_ptr<const byte_storage> storage);
}

class safetensors_file {
public:
    [[nodiscard]] const std::vector<safetensors_entry>& entries() const noexcept { return entries_; }
    [[nodiscard]] const std::map<std::string, std::string>& metadata() const noexcept { return metadata_; }
    // True when the bytes are a memory map of the file rather than an owned buffer.
    [[nodiscard]] bool memory_mapped() const noexcept { return storage_ && storage_->mapped(); }

    [[nodiscard]] const safetensors_entry* find(std::string_view name) const noexcept {
        const auto it = by_name_.find(name);
        return it == by_name_.end() ? nullptr : &entries_[it->second];
    }
    [[nodiscard]] const safetensors_entry& at(std::string_view name) const {
        const auto* e = find(name);
        if (!e) diffuse::detail::fail("safetensors_file::at", "no tensor named \"" + std::string(name) + "\"");
        return *e;
    }

    // The raw (little-endian) bytes of a tensor of this file.
    [[nodiscard]] std::span<const unsigned char> bytes(const safetensors_entry& e) const {
        if (e.begin > e.end || e.end > data_.size())
            diffuse::detail::fail("safetensors_file::bytes", "tensor \"" + e.name + "\" lies outside this file's " +
                                                                 std::to_string(data_.size()) + "-byte data buffer");
        return data_.subspan(std::size_t(e.begin), std::size_t(e.end - e.begin));
    }

    // Converts a floating-point tensor (F64, F32, F16, BF16) straight into `out`, which must hold
    // exactly numel values. F16 and BF16 convert exactly; F64 into float rounds to nearest, and an F64
    // value beyond float's range (a finite one that would round to infinity) throws diffuse::error naming
    // the element — before anything is written to `out`. Non-float dtypes throw diffuse::error.
    void read_into(const safetensors_entry& e, std::span<float> out) const { convert_into(e, out); }
    void read_into(const safetensors_entry& e, std::span<double> out) const { convert_into(e, out); }

    // The values of a floating-point tensor converted to T (float or double).
    template <class T>
        requires(std::is_same_v<T, float> || std::is_same_v<T, double>)
    [[nodiscard]] std::vector<T> as(std::string_view name) const {
        const auto& e = at(name);
        std::vector<T> out(std::size_t(e.numel()));  // numel × dtype size bytes exist: checked at parse time
        read_into(e, std::span<T>(out));
        return out;
    }

    friend safetensors_file detail::parse_safetensors_storage(std::shared_ptr<const detail::byte_storage> storage);

private:
    template <class T>
    void convert_into(const safetensors_entry& e, std::span<T> out) const {
        constexpr std::string_view where = "safetensors_file::read_into";
        const auto raw = bytes(e);
        const std::size_t esize = safetensors_dtype_size(e.dtype);
        if (esize == 0 || raw.size() % esize != 0 || raw.size() / esize != e.numel())
            diffuse::detail::fail(where, "tensor \"" + e.name + "\" does not match its bytes in this file");
        if (out.size() != raw.size() / esize)
            diffuse::detail::fail(where, "tensor \"" + e.name + "\" has " + std::to_string(raw.size() / esize) +
                                             " values but the destination holds " + std::to_string(out.size()));
        if (e.dtype == "F32") convert<std::uint32_t>(raw, out, [](std::uint32_t b) { return std::bit_cast<float>(b); });
        else if (e.dtype == "F64") {
            if constexpr (std::is_same_v<T, float>) check_fits_float(e, raw);
            convert<std::uint64_t>(raw, out, [](std::uint64_t b) { return std::bit_cast<double>(b); });
        }
        else if (e.dtype == "F16") convert<std::uint16_t>(raw, out, detail::half_to_float);
        else if (e.dtype == "BF16") convert<std::uint16_t>(raw, out, detail::bf16_to_float);
        else diffuse::detail::fail(where, "tensor \"" + e.name + "\" has dtype " + e.dtype +
                                              ", not a floating-point type (F64, F32, F16, BF16)");
    }
    // An F64 tensor read as float: every finite value must round to a finite float (|v| below FLT_MAX plus
    // half its last unit, 2^128 - 2^103); converting one beyond is undefined behaviour in C++ ([conv.double]),
    // so it is refused naming the element. NaN and ±inf convert as they are.
    static void check_fits_float(const safetensors_entry& e, std::span<const unsigned char> raw) {
        using limits = std::numeric_limits<float>;
        const double bound = double(limits::max()) + std::ldexp(1.0, limits::max_exponent - limits::digits - 1);
        for (std::size_t i = 0; i < raw.size() / 8; ++i) {
            const double v = std::bit_cast<double>(detail::load_le<std::uint64_t>(raw.data() + i * 8));
            if (std::isfinite(v) && std::fabs(v) >= bound)
                diffuse::detail::fail("safetensors_file::read_into",
                                      "tensor \"" + e.name + "\": element " + std::to_string(i) + " (" +
                                          std::to_string(v) + ", F64) lies beyond the range of float");
        }
    }
    // out[i] = value(the i-th little-endian U of raw); raw holds exactly out.size() of them.
    template <class U, class T, class F>
    static void convert(std::span<const unsigned char> raw, std::span<T> out, F value) {
        for (std::size_t i = 0; i < out.size(); ++i)
            out[i] = static_cast<T>(value(detail::load_le<U>(raw.data() + i * sizeof(U))));
    }

    std::vector<safetensors_entry> entries_;  // sorted by offset
    std::map<std::string, std::size_t, std::less<>> by_name_;  // name -> index in entries_
    std::map<std::string, std::string> metadata_;
    std::shared_ptr<const detail::byte_storage> storage_;  // the whole file
    std::span<const unsigned char> data_;                   // its data buffer (after the header)
};

namespace detail {

// The header length N from the first 8 bytes, checked against the limit and the file size.
[[nodiscard]] inline std::uint64_t safetensors_header_length(std::span<const unsigned char> file,
                                                             std::string_view where) {
    if (file.size() < 8)
        diffuse::detail::fail(where, "the file has " + std::to_string(file.size()) + " bytes, fewer than the 8-byte header length");
    const std::uint64_t n = load_le<std::uint64_t>(file.data());
    if (n > safetensors_max_header)
        diffuse::detail::fail(where, "header length " + std::to_string(n) + " exceeds the limit of " +
                        std::to_string(safetensors_max_header) + " bytes");
    if (n > file.size() - 8)
        diffuse::detail::fail(where, "header length " + std::to_string(n) + " runs past the end of the file (" +
                        std::to_string(file.size()) + " bytes)");
    return n;
}

// One header entry: known dtype, non-negative integer shape, data_offsets [begin, end) with
// end − begin = numel × dtype size (overflow-checked). No other members.
[[nodiscard]] inline safetensors_entry parse_safetensors_entry(const std::string& name, const json_value& v,
                                                               std::string_view where) {
    const std::string tag = "tensor \"" + name + "\": ";
    if (!v.is_object()) diffuse::detail::fail(where, tag + "the entry is not an object");
    safetensors_entry e;
    e.name = name;
    const json_value *dt = nullptr, *shape = nullptr, *off = nullptr;
    for (const auto& [k, m] : v.as_object()) {
        if (k == "dtype") dt = &m;
        else if (k == "shape") shape = &m;
        else if (k == "data_offsets") off = &m;
        else diffuse::detail::fail(where, tag + "unknown member \"" + k + "\"");
    }
    if (!dt || !shape || !off) diffuse::detail::fail(where, tag + "needs dtype, shape and data_offsets");
    if (!dt->is_string()) diffuse::detail::fail(where, tag + "dtype is not a string");
    e.dtype = dt->as_string();
    const std::size_t esize = safetensors_dtype_size(e.dtype);
    if (esize == 0) diffuse::detail::fail(where, tag + "unknown dtype \"" + e.dtype + "\"");
    if (!shape->is_array()) diffuse::detail::fail(where, tag + "shape is not an array");
    for (const auto& d : shape->as_array()) {
        if (!d.is_number()) diffuse::detail::fail(where, tag + "shape holds a non-number");
        try {
            e.shape.push_back(d.as_uint64());
        } catch (const diffuse::error&) {
            diffuse::detail::fail(where, tag + "shape entry " + d.number_text() + " is not a non-negative integer");
        }
    }
    if (!off->is_array() || off->size() != 2) diffuse::detail::fail(where, tag + "data_offsets is not an array of two integers");
    try {
        e.begin = off->as_array()[0].as_uint64();
        e.end = off->as_array()[1].as_uint64();
    } catch (const diffuse::error&) {
        diffuse::detail::fail(where, tag + "data_offsets are not non-negative integers");
    }
    if (e.begin > e.end)
        diffuse::detail::fail(where, tag + "data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) + ") has begin > end");
    // numel × esize without overflow; any zero extent makes it 0 whatever the others are.
    std::uint64_t bytes = esize;
    if (std::find(e.shape.begin(), e.shape.end(), 0u) != e.shape.end()) bytes = 0;
    else
        for (auto s : e.shape) {
            if (bytes > std::numeric_limits<std::uint64_t>::max() / s)
                diffuse::detail::fail(where, tag + "the number of bytes of its shape overflows 64 bits");
            bytes *= s;
        }
    if (e.end - e.begin != bytes)
        diffuse::detail::fail(where, tag + "data_offsets span " + std::to_string(e.end - e.begin) + " bytes but the shape and " +
                        e.dtype + " need " + std::to_string(bytes));
    return e;
}

// Sorted by offset, the entries must tile [0, buffer_size) exactly: no gap, no overlap, no tail.
inline void check_safetensors_tiling(const std::vector<safetensors_entry>& sorted, std::uint64_t buffer_size,
                                     std::string_view where) {
    std::uint64_t pos = 0;
    for (const auto& e : sorted) {
        if (e.begin != pos)
            diffuse::detail::fail(where, "tensor \"" + e.name + "\" starts at byte " + std::to_string(e.begin) + " of the data but " +
                            (e.begin < pos ? "the previous tensor ends at " : "the data is not covered from ") +
                            std::to_string(pos) + (e.begin < pos ? " (overlap)" : " (gap)"));
        pos = e.end;
    }
    if (pos != buffer_size)
        diffuse::detail::fail(where, "the tensors cover " + std::to_string(pos) + " bytes of data but the file holds " +
                        std::to_string(buffer_size) + (pos > buffer_size ? " (truncated file)" : " (trailing bytes)"));
}

// Validates the whole file held by `storage` and returns it parsed; the result shares the storage.
[[nodiscard]] inline safetensors_file parse_safetensors_storage(std::shared_ptr<const byte_storage> storage) {
    constexpr std::string_view where = "parse_safetensors";
    const auto file = storage->bytes();
    const std::uint64_t n = safetensors_header_length(file, where);
    const std::string_view text(reinterpret_cast<const char*>(file.data() + 8), std::size_t(n));
    json_value header;
    try {
        header = parse_json(text);
    } catch (const diffuse::error& e) {
        diffuse::detail::fail(where, std::string("invalid JSON header: ") + e.what());
    }
    if (!header.is_object()) diffuse::detail::fail(where, "the header is not a JSON object");

    safetensors_file st;
    for (const auto& [name, v] : header.as_object()) {
        if (name != "__metadata__") {
            st.entries_.push_back(parse_safetensors_entry(name, v, where));
            continue;
        }
        if (!v.is_object()) diffuse::detail::fail(where, "__metadata__ is not an object");
        for (const auto& [k, mv] : v.as_object()) {
            if (!mv.is_string()) diffuse::detail::fail(where, "__metadata__ value of \"" + k + "\" is not a string");
            st.metadata_[k] = mv.as_string();
        }
    }
    std::sort(st.entries_.begin(), st.entries_.end(), [](const auto& a, const auto& b) {
        return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    check_safetensors_tiling(st.entries_, file.size() - 8 - n, where);
    for (std::size_t i = 0; i < st.entries_.size(); ++i)  // names are unique: the JSON has no duplicate keys
        if (!st.by_name_.emplace(st.entries_[i].name, i).second)
            diffuse::detail::fail(where, "tensor \"" + st.entries_[i].name + "\" appears twice");
    st.data_ = file.subspan(std::size_t(8 + n));
    st.storage_ = std::move(storage);
    return st;
}

}  // namespace detail

// Parses and validates a whole safetensors file held in memory (copied once into the result).
[[nodiscard]] inline safetensors_file parse_safetensors(std::span<const unsigned char> file) {
    return detail::parse_safetensors_storage(
        std::make_shared<const detail::byte_storage>(std::vector<unsigned char>(file.begin(), file.end())));
}
// The same, taking over the buffer (no copy).
[[nodiscard]] inline safetensors_file parse_safetensors(std::vector<unsigned char>&& file) {
    return detail::parse_safetensors_storage(std::make_shared<const detail::byte_storage>(std::move(file)));
}

// Opens and validates the safetensors file at `path`, memory-mapped where the system allows.
[[nodiscard]] inline safetensors_file read_safetensors(const std::string& path) {
    auto storage = detail::load_file(path, "read_safetensors");
    try {
        return detail::parse_safetensors_storage(std::move(storage));
    } catch (const diffuse::error& e) {
        diffuse::detail::fail("read_safetensors", path + ": " + e.what());
    }
}

// The tensors of one safetensors file or of a sharded checkpoint (an .index.json and its shards),
// looked up by name whichever file holds them.
class safetensors_collection {
public:
    // The entry of tensor `name`, nullptr when there is none.
    [[nodiscard]] const safetensors_entry* find(std::string_view name) const noexcept {
        const auto it = shard_of_.find(name);
        return it == shard_of_.end() ? nullptr : files_[it->second].find(name);
    }
    [[nodiscard]] const safetensors_entry& at(std::string_view name) const { return file(name).at(name); }
    [[nodiscard]] bool contains(std::string_view name) const noexcept { return shard_of_.count(name) != 0; }
    [[nodiscard]] std::size_t size() const noexcept { return shard_of_.size(); }

    // The file that holds tensor `name` and its file name (e.g. "diffusion_pytorch_model-00001-of-00002.safetensors").
    [[nodiscard]] const safetensors_file& file(std::string_view name) const { return files_[index_of(name)]; }
    [[nodiscard]] const std::string& file_name(std::string_view name) const { return file_names_[index_of(name)]; }
    // Every file, each opened once, and their names, in the same order.
    [[nodiscard]] const std::vector<safetensors_file>& files() const noexcept { return files_; }
    [[nodiscard]] const std::vector<std::string>& file_names() const noexcept { return file_names_; }

    // All tensor names, sorted.
    [[nodiscard]] std::vector<std::string> names() const {
        std::vector<std::string> r;
        r.reserve(shard_of_.size());
        for (const auto& [name, i] : shard_of_) r.push_back(name);
        return r;
    }
    [[nodiscard]] const std::vector<std::uint64_t>& shape(std::string_view name) const { return at(name).shape; }
    [[nodiscard]] const std::string& dtype(std::string_view name) const { return at(name).dtype; }

    // Converts tensor `name` straight into `out` (safetensors_file::read_into).
    void read_into(std::string_view name, std::span<float> out) const { file(name).read_into(at(name), out); }
    void read_into(std::string_view name, std::span<double> out) const { file(name).read_into(at(name), out); }

    friend safetensors_collection open_safetensors(const std::filesystem::path& path);

private:
    [[nodiscard]] std::size_t index_of(std::string_view name) const {
        const auto it = shard_of_.find(name);
        if (it == shard_of_.end())
            diffuse::detail::fail("safetensors_collection", "no tensor named \"" + std::string(name) + "\"");
        return it->second;
    }

    std::vector<safetensors_file> files_;
    std::vector<std::string> file_names_;
    std::map<std::string, std::size_t, std::less<>> shard_of_;  // tensor name -> index in files_
};

namespace detail {

// A shard named by an (untrusted) index must be a plain file name in the index's folder.
[[nodiscard]] inline bool plain_file_name(std::string_view s) noexcept {
    return !s.empty() && s != "." && s != ".." && s.find_first_of(std::string_view("/\\:\0", 4)) == std::string_view::npos;
}

// weight_map of a diffusers index: {"metadata": {...}, "weight_map": {tensor: shard file name}}.
[[nodiscard]] inline std::map<std::string, std::string> parse_safetensors_index(const std::string& path,
                                                                                std::string_view where) {
    const auto bytes = read_file_bytes(path, where, json_limits{}.max_size);
    json_value index;
    try {
        index = parse_json(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
    } catch (const diffuse::error& e) {
        diffuse::detail::fail(where, path + ": invalid JSON: " + e.what());
    }
    if (!index.is_object()) diffuse::detail::fail(where, path + ": the index is not a JSON object");
    if (const auto* md = index.find("metadata"); md && !md->is_object())
        diffuse::detail::fail(where, path + ": \"metadata\" is not an object");
    const auto* map = index.find("weight_map");
    if (!map) diffuse::detail::fail(where, path + ": the index has no \"weight_map\"");
    if (!map->is_object()) diffuse::detail::fail(where, path + ": \"weight_map\" is not an object");
    if (map->size() == 0) diffuse::detail::fail(where, path + ": \"weight_map\" lists no tensors");
    std::map<std::string, std::string> shards;
    for (const auto& [tensor, file] : map->as_object()) {
        if (!file.is_string()) diffuse::detail::fail(where, path + ": the shard of tensor \"" + tensor + "\" is not a string");
        if (!plain_file_name(file.as_string()))
            diffuse::detail::fail(where, path + ": tensor \"" + tensor + "\" is in shard \"" + file.as_string() +
                            "\", which is not a plain file name in the index's folder");
        shards.emplace(tensor, file.as_string());  // keys are unique: the JSON has no duplicate keys
    }
    return shards;
}

}  // namespace detail

// Opens a single safetensors file, or, when `path` ends in ".index.json", a sharded checkpoint: each
// distinct shard (a plain file name in the index's folder) is opened once, and the index and shards must
// agree exactly — every tensor of the weight_map is in its shard, no tensor is in two shards and no
// shard holds a tensor the weight_map does not list. Violations throw diffuse::error naming the tensor
// and the file.
[[nodiscard]] inline safetensors_collection open_safetensors(const std::filesystem::path& path) {
    constexpr std::string_view where = "open_safetensors";
    const std::string p = path.string();
    safetensors_collection c;
    if (!p.ends_with(".index.json")) {
        c.files_.push_back(read_safetensors(p));
        c.file_names_.push_back(path.filename().string());
        for (const auto& e : c.files_[0].entries()) c.shard_of_.emplace(e.name, 0);
        return c;
    }
    const auto weight_map = detail::parse_safetensors_index(p, where);
    std::map<std::string, std::size_t> shard_index;  // file name -> index in files_
    for (const auto& [tensor, file] : weight_map) {
        if (shard_index.count(file)) continue;
        try {
            c.files_.push_back(read_safetensors((path.parent_path() / file).string()));
        } catch (const diffuse::error& e) {
            diffuse::detail::fail(where, p + ": shard " + file + " (of tensor \"" + tensor + "\") cannot be used: " + e.what());
        }
        c.file_names_.push_back(file);
        shard_index.emplace(file, c.files_.size() - 1);
    }
    for (std::size_t i = 0; i < c.files_.size(); ++i)
        for (const auto& e : c.files_[i].entries()) {
            const auto mapped = weight_map.find(e.name);
            if (mapped == weight_map.end())
                diffuse::detail::fail(where, p + ": shard " + c.file_names_[i] + " holds tensor \"" + e.name +
                                                 "\", which the weight_map does not list");
            if (const auto [it, fresh] = c.shard_of_.emplace(e.name, i); !fresh)
                diffuse::detail::fail(where, p + ": tensor \"" + e.name + "\" is in two shards, " +
                                                 c.file_names_[it->second] + " and " + c.file_names_[i]);
            if (mapped->second != c.file_names_[i])
                diffuse::detail::fail(where, p + ": shard " + c.file_names_[i] + " holds tensor \"" + e.name +
                                                 "\", which the weight_map puts in " + mapped->second);
        }
    for (const auto& [tensor, file] : weight_map)
        if (!c.shard_of_.count(tensor))
            diffuse::detail::fail(where, p + ": tensor \"" + tensor + "\" is missing from its shard " + file);
    return c;
}

// The weights file of a diffusers model folder: <folder>/<stem>.safetensors, else
// <folder>/<stem>.safetensors.index.json (a sharded checkpoint); the path is returned as a string,
// ready for open_safetensors. Throws diffuse::error naming the folder and both names when neither
// exists (PyTorch .bin pickles are never read).
[[nodiscard]] inline std::string find_weights_file(const std::filesystem::path& folder,
                                                   std::string_view stem = "diffusion_pytorch_model") {
    namespace fs = std::filesystem;
    const std::string single = std::string(stem) + ".safetensors", index = single + ".index.json";
    std::error_code ec;
    for (const auto& name : {single, index})
        if (fs::is_regular_file(folder / name, ec)) return (folder / name).string();
    std::string msg = "the folder " + folder.string() + " holds neither " + single + " nor " + index;
    const std::string bin = std::string(stem) + ".bin";
    if (fs::exists(folder / bin, ec) || fs::exists(folder / (bin + ".index.json"), ec))
        msg += "; it has " + bin + ", a PyTorch pickle, which is not read (convert it to safetensors)";
    diffuse::detail::fail("find_weights_file", msg);
}

// Builds a safetensors file from F32 / F64 tensors (written little-endian, header padded to 8 bytes).
class safetensors_writer {
public:
    template <class T>
        requires(std::is_same_v<T, float> || std::is_same_v<T, double>)
    void add(const std::string& name, const std::vector<std::uint64_t>& shape, std::span<const T> values) {
        // the shape's element count, overflow-checked (a wrapped product could match values.size())
        std::uint64_t n = std::find(shape.begin(), shape.end(), 0u) != shape.end() ? 0 : 1;
        for (auto s : shape) {
            if (n != 0 && s > std::numeric_limits<std::uint64_t>::max() / n)
                diffuse::detail::fail("safetensors_writer::add", "tensor \"" + name + "\": the shape's element count overflows 64 bits");
            n *= s;
        }
        if (n != values.size())
            diffuse::detail::fail("safetensors_writer::add", "tensor \"" + name + "\" has " +
                                                                 std::to_string(values.size()) +
                                                                 " values but its shape holds " + std::to_string(n));
        if (name == "__metadata__" || std::any_of(items_.begin(), items_.end(), [&](const auto& i) { return i.name == name; }))
            diffuse::detail::fail("safetensors_writer::add", "tensor name \"" + name + "\" is reserved or already used");
        item it{name, std::is_same_v<T, float> ? "F32" : "F64", shape, {}};
        it.data.resize(values.size() * sizeof(T));
        for (std::size_t i = 0; i < values.size(); ++i) {
            T v = values[i];
            unsigned char b[sizeof(T)];
            std::memcpy(b, &v, sizeof(T));
            if constexpr (std::endian::native == std::endian::big) std::reverse(b, b + sizeof(T));
            std::memcpy(it.data.data() + i * sizeof(T), b, sizeof(T));
        }
        items_.push_back(std::move(it));
    }
    void set_metadata(const std::string& key, const std::string& value) { metadata_[key] = value; }

    // The whole file in memory.
    [[nodiscard]] std::vector<unsigned char> to_bytes() const {
        std::vector<unsigned char> out = header_bytes();
        for (const auto& it : items_) out.insert(out.end(), it.data.begin(), it.data.end());
        return out;
    }

    // Writes the file at `path` all or nothing (io/file.hpp write_file: a temporary in the same folder,
    // every write and the close checked, then renamed into place); throws diffuse::error naming `path`.
    void write(const std::string& path) const {
        const auto header = header_bytes();
        std::vector<std::span<const unsigned char>> parts{header};
        for (const auto& it : items_) parts.emplace_back(it.data);
        write_file(path, parts, "safetensors_writer::write");
    }

private:
    // The 8-byte header length and the JSON header (padded with spaces to a multiple of 8 bytes).
    [[nodiscard]] std::vector<unsigned char> header_bytes() const {
        std::string h = "{";
        bool first = true;
        if (!metadata_.empty()) {
            h += "\"__metadata__\":{";
            for (const auto& [k, v] : metadata_) {
                if (!first) h += ",";
                first = false;
                h += json_quote(k) + ":" + json_quote(v);
            }
            h += "}";
        }
        std::uint64_t off = 0;
        for (const auto& it : items_) {
            if (h.size() > 1) h += ",";
            h += json_quote(it.name) + ":{\"dtype\":\"" + it.dtype + "\",\"shape\":[";
            for (std::size_t i = 0; i < it.shape.size(); ++i) {
                if (i) h += ',';
                h += std::to_string(it.shape[i]);
            }
            h += "],\"data_offsets\":[" + std::to_string(off) + "," + std::to_string(off + it.data.size()) + "]}";
            off += it.data.size();
        }
        h += "}";
        while (h.size() % 8 != 0) h += ' ';
        const std::uint64_t n = h.size();
        std::vector<unsigned char> out(std::size_t(8 + n));
        for (int i = 0; i < 8; ++i) out[std::size_t(i)] = static_cast<unsigned char>(n >> (8 * i));
        std::memcpy(out.data() + 8, h.data(), h.size());
        return out;
    }

    struct item {
        std::string name, dtype;
        std::vector<std::uint64_t> shape;
        std::vector<unsigned char> data;
    };
    std::vector<item> items_;
    std::map<std::string, std::string> metadata_;
};

}  // namespace diffuse::io
