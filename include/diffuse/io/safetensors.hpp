#pragma once
// safetensors: reading (strictly validated, the file is untrusted) and writing.
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
// buffer.
//
//   auto st = diffuse::io::read_safetensors("model.safetensors");
//   std::vector<float> w = st.as<float>("layer.weight");   // F32/F64/F16/BF16 converted
//   diffuse::io::safetensors_writer out;  out.add("w", shape, std::span<const float>(w));  out.write(path);

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "diffuse/core/error.hpp"
#include "diffuse/io/json.hpp"

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
[[nodiscard]] inline float half_to_float(std::uint16_t h) noexcept {
    const std::uint32_t sign = std::uint32_t(h >> 15) << 31;
    const std::uint32_t exp = (h >> 10) & 0x1F, man = h & 0x3FF;
    float f;
    if (exp == 0) {
        f = std::ldexp(float(man), -24);  // subnormal or zero
        return sign ? -f : f;
    }
    const std::uint32_t bits = exp == 31 ? (sign | 0x7F800000u | (man << 13))
                                         : (sign | ((exp - 15 + 127) << 23) | (man << 13));
    std::memcpy(&f, &bits, 4);
    return f;
}
[[nodiscard]] inline float bf16_to_float(std::uint16_t h) noexcept {
    const std::uint32_t bits = std::uint32_t(h) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}
}  // namespace detail

class safetensors_file {
public:
    [[nodiscard]] const std::vector<safetensors_entry>& entries() const noexcept { return entries_; }
    [[nodiscard]] const std::map<std::string, std::string>& metadata() const noexcept { return metadata_; }

    [[nodiscard]] const safetensors_entry* find(std::string_view name) const noexcept {
        for (const auto& e : entries_)
            if (e.name == name) return &e;
        return nullptr;
    }
    [[nodiscard]] const safetensors_entry& at(std::string_view name) const {
        const auto* e = find(name);
        if (!e) diffuse::detail::fail("safetensors_file::at", "no tensor named \"" + std::string(name) + "\"");
        return *e;
    }

    // The raw bytes of a tensor.
    [[nodiscard]] std::span<const unsigned char> bytes(const safetensors_entry& e) const {
        return std::span<const unsigned char>(buffer_).subspan(std::size_t(e.begin), std::size_t(e.end - e.begin));
    }

    // The values of a floating-point tensor (F64, F32, F16, BF16) converted to T.
    template <class T>
    [[nodiscard]] std::vector<T> as(std::string_view name) const {
        const auto& e = at(name);
        const auto raw = bytes(e);
        const std::size_t n = std::size_t(e.numel());
        std::vector<T> out(n);
        auto load = [&]<class S>(S) {
            for (std::size_t i = 0; i < n; ++i) {
                S s;
                std::memcpy(&s, raw.data() + i * sizeof(S), sizeof(S));
                if constexpr (std::endian::native == std::endian::big) s = byteswap(s);
                if constexpr (std::is_same_v<S, std::uint16_t>)
                    out[i] = static_cast<T>(e.dtype == "F16" ? detail::half_to_float(s) : detail::bf16_to_float(s));
                else out[i] = static_cast<T>(s);
            }
        };
        if (e.dtype == "F64") load(double{});
        else if (e.dtype == "F32") load(float{});
        else if (e.dtype == "F16" || e.dtype == "BF16") load(std::uint16_t{});
        else diffuse::detail::fail("safetensors_file::as", "tensor \"" + e.name + "\" has dtype " + e.dtype +
                                                                ", not a floating-point type (F64, F32, F16, BF16)");
        return out;
    }

    friend safetensors_file parse_safetensors(std::span<const unsigned char> file);

private:
    template <class S>
    static S byteswap(S s) {
        unsigned char b[sizeof(S)];
        std::memcpy(b, &s, sizeof(S));
        std::reverse(b, b + sizeof(S));
        std::memcpy(&s, b, sizeof(S));
        return s;
    }

    std::vector<safetensors_entry> entries_;  // sorted by offset
    std::map<std::string, std::string> metadata_;
    std::vector<unsigned char> buffer_;
};

// Parses and validates a whole safetensors file held in memory.
[[nodiscard]] inline safetensors_file parse_safetensors(std::span<const unsigned char> file) {
    constexpr std::string_view where = "parse_safetensors";
    using diffuse::detail::fail;
    if (file.size() < 8)
        fail(where, "the file has " + std::to_string(file.size()) + " bytes, fewer than the 8-byte header length");
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | file[std::size_t(i)];
    if (n > safetensors_max_header)
        fail(where, "header length " + std::to_string(n) + " exceeds the limit of " +
                        std::to_string(safetensors_max_header) + " bytes");
    if (n > file.size() - 8)
        fail(where, "header length " + std::to_string(n) + " runs past the end of the file (" +
                        std::to_string(file.size()) + " bytes)");
    const std::string_view text(reinterpret_cast<const char*>(file.data() + 8), std::size_t(n));
    json_value header;
    try {
        header = parse_json(text);
    } catch (const diffuse::error& e) {
        fail(where, std::string("invalid JSON header: ") + e.what());
    }
    if (!header.is_object()) fail(where, "the header is not a JSON object");
    const std::uint64_t buffer_size = file.size() - 8 - n;

    safetensors_file st;
    for (const auto& [name, v] : header.as_object()) {
        if (name == "__metadata__") {
            if (!v.is_object()) fail(where, "__metadata__ is not an object");
            for (const auto& [k, mv] : v.as_object()) {
                if (!mv.is_string()) fail(where, "__metadata__ value of \"" + k + "\" is not a string");
                st.metadata_[k] = mv.as_string();
            }
            continue;
        }
        const std::string tag = "tensor \"" + name + "\": ";
        if (!v.is_object()) fail(where, tag + "the entry is not an object");
        safetensors_entry e;
        e.name = name;
        const json_value *dt = nullptr, *shape = nullptr, *off = nullptr;
        for (const auto& [k, m] : v.as_object()) {
            if (k == "dtype") dt = &m;
            else if (k == "shape") shape = &m;
            else if (k == "data_offsets") off = &m;
            else fail(where, tag + "unknown member \"" + k + "\"");
        }
        if (!dt || !shape || !off) fail(where, tag + "needs dtype, shape and data_offsets");
        if (!dt->is_string()) fail(where, tag + "dtype is not a string");
        e.dtype = dt->as_string();
        const std::size_t esize = safetensors_dtype_size(e.dtype);
        if (esize == 0) fail(where, tag + "unknown dtype \"" + e.dtype + "\"");
        if (!shape->is_array()) fail(where, tag + "shape is not an array");
        std::uint64_t numel = 1;
        bool overflow = false;
        for (const auto& d : shape->as_array()) {
            if (!d.is_number()) fail(where, tag + "shape holds a non-number");
            std::uint64_t s;
            try {
                s = d.as_uint64();
            } catch (const diffuse::error&) {
                fail(where, tag + "shape entry " + (d.is_number() ? d.number_text() : std::string("?")) +
                                " is not a non-negative integer");
            }
            e.shape.push_back(s);
            if (s != 0 && numel > std::numeric_limits<std::uint64_t>::max() / s) overflow = true;
            else numel *= s;
        }
        if (!off->is_array() || off->size() != 2) fail(where, tag + "data_offsets is not an array of two integers");
        try {
            e.begin = off->as_array()[0].as_uint64();
            e.end = off->as_array()[1].as_uint64();
        } catch (const diffuse::error&) {
            fail(where, tag + "data_offsets are not non-negative integers");
        }
        if (e.begin > e.end)
            fail(where, tag + "data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                            ") has begin > end");
        bool zero = false;
        for (auto s : e.shape) zero = zero || s == 0;
        if (zero) numel = 0, overflow = false;
        if (overflow || (numel != 0 && numel > std::numeric_limits<std::uint64_t>::max() / esize))
            fail(where, tag + "the number of bytes of its shape overflows 64 bits");
        if (e.end - e.begin != numel * esize)
            fail(where, tag + "data_offsets span " + std::to_string(e.end - e.begin) + " bytes but the shape and " +
                            e.dtype + " need " + std::to_string(numel * esize));
        st.entries_.push_back(std::move(e));
    }
    std::sort(st.entries_.begin(), st.entries_.end(), [](const auto& a, const auto& b) {
        return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    std::uint64_t pos = 0;
    for (const auto& e : st.entries_) {
        if (e.begin != pos)
            fail(where, "tensor \"" + e.name + "\" starts at byte " + std::to_string(e.begin) + " of the data but " +
                            (e.begin < pos ? "the previous tensor ends at " : "the data is not covered from ") +
                            std::to_string(pos) + (e.begin < pos ? " (overlap)" : " (gap)"));
        pos = e.end;
    }
    if (pos != buffer_size)
        fail(where, "the tensors cover " + std::to_string(pos) + " bytes of data but the file holds " +
                        std::to_string(buffer_size) + (pos > buffer_size ? " (truncated file)" : " (trailing bytes)"));
    st.buffer_.assign(file.begin() + std::ptrdiff_t(8 + n), file.end());
    return st;
}

[[nodiscard]] inline safetensors_file read_safetensors(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) diffuse::detail::fail("read_safetensors", "cannot open " + path);
    std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (f.bad()) diffuse::detail::fail("read_safetensors", "cannot read " + path);
    try {
        return parse_safetensors(bytes);
    } catch (const diffuse::error& e) {
        diffuse::detail::fail("read_safetensors", path + ": " + e.what());
    }
}

// Builds a safetensors file from F32 / F64 tensors (written little-endian, header padded to 8 bytes).
class safetensors_writer {
public:
    template <class T>
        requires(std::is_same_v<T, float> || std::is_same_v<T, double>)
    void add(const std::string& name, const std::vector<std::uint64_t>& shape, std::span<const T> values) {
        std::uint64_t n = 1;
        for (auto s : shape) n *= s;
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

    [[nodiscard]] std::vector<unsigned char> to_bytes() const {
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
        std::vector<unsigned char> out(std::size_t(8 + n + off));
        for (int i = 0; i < 8; ++i) out[std::size_t(i)] = static_cast<unsigned char>(n >> (8 * i));
        std::memcpy(out.data() + 8, h.data(), h.size());
        std::size_t pos = std::size_t(8 + n);
        for (const auto& it : items_) {
            if (!it.data.empty()) std::memcpy(out.data() + pos, it.data.data(), it.data.size());
            pos += it.data.size();
        }
        return out;
    }

    void write(const std::string& path) const {
        const auto bytes = to_bytes();
        std::ofstream f(path, std::ios::binary | std::ios::trunc);
        if (!f) diffuse::detail::fail("safetensors_writer::write", "cannot open " + path + " for writing");
        f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
        if (!f) diffuse::detail::fail("safetensors_writer::write", "cannot write " + path);
    }

private:
    struct item {
        std::string name, dtype;
        std::vector<std::uint64_t> shape;
        std::vector<unsigned char> data;
    };
    std::vector<item> items_;
    std::map<std::string, std::string> metadata_;
};

}  // namespace diffuse::io
