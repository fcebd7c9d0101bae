#pragma once
// Reading and writing NumPy .npy files (format versions 1.0-3.0, little-endian, C order).
// Supported dtypes: <f4 <f8 <i4 <i8 <u4 <u8. Files are untrusted input: every size is checked and
// any malformed header raises diffuse::error naming the file and what is wrong.

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "diffuse/core/error.hpp"

namespace diffuse::io {

struct npy_array {
    std::string dtype;                // e.g. "<f4"
    std::vector<std::size_t> shape;   // C order
    std::vector<unsigned char> bytes; // raw little-endian payload

    [[nodiscard]] std::size_t size() const {
        std::size_t n = 1;
        for (auto s : shape) n *= s;
        return n;
    }

    // The values converted to T (exact when T matches the stored dtype).
    template <class T>
    [[nodiscard]] std::vector<T> as() const {
        std::vector<T> out(size());
        auto load = [&]<class S>(S) {
            for (std::size_t i = 0; i < out.size(); ++i) {
                S s;
                std::memcpy(&s, bytes.data() + i * sizeof(S), sizeof(S));
                out[i] = static_cast<T>(s);
            }
        };
        if (dtype == "<f4") load(float{});
        else if (dtype == "<f8") load(double{});
        else if (dtype == "<i4") load(std::int32_t{});
        else if (dtype == "<i8") load(std::int64_t{});
        else if (dtype == "<u4") load(std::uint32_t{});
        else if (dtype == "<u8") load(std::uint64_t{});
        else if (dtype == "|u1") load(std::uint8_t{});
        return out;
    }
};

namespace detail {

inline std::size_t npy_dtype_size(const std::string& d) {
    if (d == "|u1") return 1;
    if (d == "<f4" || d == "<i4" || d == "<u4") return 4;
    if (d == "<f8" || d == "<i8" || d == "<u8") return 8;
    return 0;
}

template <class T>
constexpr const char* npy_dtype_of() {
    if constexpr (std::is_same_v<T, float>) return "<f4";
    else if constexpr (std::is_same_v<T, double>) return "<f8";
    else if constexpr (std::is_same_v<T, std::int32_t>) return "<i4";
    else if constexpr (std::is_same_v<T, std::int64_t>) return "<i8";
    else if constexpr (std::is_same_v<T, std::uint32_t>) return "<u4";
    else if constexpr (std::is_same_v<T, std::uint64_t>) return "<u8";
    else static_assert(sizeof(T) == 0, "diffuse: write_npy supports float, double and 32/64-bit integers");
}

// Finds `'key': value` in the header dict and returns the text of value (a quoted string, a
// tuple or a bare word).
inline std::string npy_field(const std::string& h, const std::string& key, const std::string& path) {
    const auto k = h.find("'" + key + "'");
    if (k == std::string::npos) diffuse::detail::fail("read_npy", path + ": header lacks '" + key + "'");
    auto p = h.find(':', k);
    if (p == std::string::npos) diffuse::detail::fail("read_npy", path + ": malformed header");
    ++p;
    while (p < h.size() && h[p] == ' ') ++p;
    if (p >= h.size()) diffuse::detail::fail("read_npy", path + ": malformed header");
    const char open = h[p];
    const char close = open == '\'' ? '\'' : open == '(' ? ')' : ',';
    const auto e = h.find(close, p + 1);
    if (e == std::string::npos) diffuse::detail::fail("read_npy", path + ": malformed header");
    return open == '\'' ? h.substr(p + 1, e - p - 1) : h.substr(p, e - p + (open == '(' ? 1 : 0));
}

}  // namespace detail

[[nodiscard]] inline npy_array read_npy(const std::string& path) {
    using diffuse::detail::fail;
    std::ifstream f(path, std::ios::binary);
    if (!f) fail("read_npy", "cannot open " + path);
    std::vector<unsigned char> file((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (file.size() < 10 || std::memcmp(file.data(), "\x93NUMPY", 6) != 0)
        fail("read_npy", path + ": not an .npy file (bad magic)");
    const int major = file[6];
    std::size_t hlen = 0, hstart = 0;
    if (major == 1) {
        hlen = file[8] | (std::size_t(file[9]) << 8);
        hstart = 10;
    } else if (major == 2 || major == 3) {
        if (file.size() < 12) fail("read_npy", path + ": truncated header");
        hlen = file[8] | (std::size_t(file[9]) << 8) | (std::size_t(file[10]) << 16) | (std::size_t(file[11]) << 24);
        hstart = 12;
    } else {
        fail("read_npy", path + ": unsupported format version " + std::to_string(major));
    }
    if (hlen > file.size() - hstart) fail("read_npy", path + ": header length exceeds the file");
    const std::string h(file.begin() + hstart, file.begin() + hstart + hlen);
    npy_array a;
    a.dtype = detail::npy_field(h, "descr", path);
    const auto elem = detail::npy_dtype_size(a.dtype);
    if (elem == 0) fail("read_npy", path + ": unsupported dtype '" + a.dtype + "'");
    if (detail::npy_field(h, "fortran_order", path).find("False") == std::string::npos)
        fail("read_npy", path + ": Fortran order is not supported");
    const std::string shape = detail::npy_field(h, "shape", path);
    std::size_t n = 1;
    for (std::size_t i = 1; i < shape.size();) {
        if (shape[i] >= '0' && shape[i] <= '9') {
            std::size_t v = 0, j = i;
            while (j < shape.size() && shape[j] >= '0' && shape[j] <= '9') {
                if (v > (SIZE_MAX - 9) / 10) fail("read_npy", path + ": shape overflows");
                v = v * 10 + std::size_t(shape[j] - '0');
                ++j;
            }
            if (v != 0 && n > SIZE_MAX / v) fail("read_npy", path + ": shape overflows");
            n *= v;
            a.shape.push_back(v);
            i = j;
        } else {
            ++i;
        }
    }
    const std::size_t payload = file.size() - hstart - hlen;
    if (n > SIZE_MAX / elem || n * elem != payload)
        fail("read_npy", path + ": payload has " + std::to_string(payload) + " bytes, shape needs " +
                             std::to_string(n * elem));
    a.bytes.assign(file.begin() + std::ptrdiff_t(hstart + hlen), file.end());
    return a;
}

template <class T>
void write_npy(const std::string& path, std::span<const T> data, const std::vector<std::size_t>& shape) {
    std::size_t n = 1;
    std::string s = "(";
    for (auto d : shape) {
        n *= d;
        s += std::to_string(d) + ", ";
    }
    if (shape.size() > 1) s.resize(s.size() - 2);
    s += ")";
    if (n != data.size())
        diffuse::detail::fail("write_npy", "shape holds " + std::to_string(n) + " values but data has " +
                                               std::to_string(data.size()));
    std::string h = std::string("{'descr': '") + detail::npy_dtype_of<T>() + "', 'fortran_order': False, 'shape': " + s + ", }";
    const std::size_t total = 10 + h.size() + 1;
    h.append((64 - total % 64) % 64, ' ');
    h += '\n';
    std::ofstream f(path, std::ios::binary);
    if (!f) diffuse::detail::fail("write_npy", "cannot open " + path + " for writing");
    const unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, static_cast<unsigned char>(h.size() & 0xff),
                                   static_cast<unsigned char>(h.size() >> 8)};
    f.write(reinterpret_cast<const char*>(pre), 10);
    f.write(h.data(), std::streamsize(h.size()));
    f.write(reinterpret_cast<const char*>(data.data()), std::streamsize(data.size() * sizeof(T)));
    if (!f) diffuse::detail::fail("write_npy", "failed writing " + path);
}

}  // namespace diffuse::io
