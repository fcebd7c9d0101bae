#pragma once
// Reading and writing NumPy .npy files (format versions 1.0-3.0, little-endian, C order).
// Supported dtypes: <f4 <f8 <i4 <i8 <u4 <u8 |u1. Files are untrusted input: any defect raises
// diffuse::error naming the file and what is wrong.
//
// Layout (numpy.lib.format): the magic "\x93NUMPY", major and minor version (1.0, 2.0 or 3.0), the
// header length (2 bytes little-endian in 1.0, 4 bytes in 2.0/3.0), the header, then the data.
// The header is read as this strict subset of the Python literal numpy writes:
//   header := ws '{' ws item (ws ',' ws item){2} [ws ','] ws '}' ws        ws: space, tab, CR, LF
//   item   := key ws ':' ws value     each of 'descr', 'fortran_order', 'shape' exactly once, any order
//   descr: a quoted dtype name; fortran_order: False (True is refused); shape: '()' (a scalar),
//   '(' n ',' ')' or '(' n (',' n)+ [','] ')' with n a non-negative decimal integer, no leading zeros.
// Strings are quoted with ' or " and hold no backslash. Everything else — a negative or fractional
// extent, a one-element tuple without its comma, text between the items, unknown keys — is refused.
// The element count and byte size are computed with overflow checks, and the data must be exactly that
// size: the file ends right after it.
//
// Bounds (npy_limits, raise them for larger files): a header of at most max_header_bytes, a data size
// of at most max_data_bytes. read_npy reads the file in bounded pieces (io/file.hpp): never more than
// the header declares, and a regular file whose size differs from the declared one is refused before
// its data is read, so a pipe, FIFO or device (/dev/zero) is read only as far as its bytes hold up.
//
// write_npy writes through io/file.hpp's write_file: the file is complete or an error is thrown and it
// is left as it was. npy_writer streams an array of known shape (header first, then the values) with the
// same all-or-nothing guarantee.

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <sstream>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "diffuse/core/error.hpp"
#include "diffuse/io/file.hpp"

namespace diffuse::io {

struct npy_limits {
    std::uint64_t max_header_bytes = 65536;            // the header dict (numpy writes about 128 bytes)
    std::uint64_t max_data_bytes = std::uint64_t{1} << 32;  // the array data: 4 GiB
};

namespace detail {

inline std::size_t npy_dtype_size(std::string_view d) {
    if (d == "|u1") return 1;
    if (d == "<f4" || d == "<i4" || d == "<u4") return 4;
    if (d == "<f8" || d == "<i8" || d == "<u8") return 8;
    return 0;
}

// The product of `shape` times `element` bytes, nullopt when it overflows (any zero extent makes it 0).
[[nodiscard]] inline std::optional<std::uint64_t> npy_checked_bytes(const std::vector<std::size_t>& shape,
                                                                    std::uint64_t element) {
    for (auto s : shape)
        if (s == 0) return 0;
    std::uint64_t n = element;
    for (auto s : shape) {
        if (n > std::numeric_limits<std::uint64_t>::max() / s) return std::nullopt;
        n *= s;
    }
    return n;
}

// s converted to T when the value is representable: an integer target needs an integral value in its
// range (NaN, ±inf, 2.5 or 2^40 into int32 are not), a float target a value that does not round beyond
// its largest finite value (NaN and ±inf convert). nullopt otherwise — never undefined behaviour.
template <class T, class S>
[[nodiscard]] std::optional<T> npy_convert(S s) {
    if constexpr (std::is_floating_point_v<T>) {
        if constexpr (std::is_floating_point_v<S> && sizeof(S) > sizeof(T)) {
            // T's largest value plus half its last unit (2^103 for float) is the midpoint to the next power of
            // two, which rounds (to even) to infinity; exact in S
            using limits = std::numeric_limits<T>;
            const S overflow_bound = S(limits::max()) + std::ldexp(S(1), limits::max_exponent - limits::digits - 1);
            if (std::isfinite(s) && std::fabs(s) >= overflow_bound) return std::nullopt;
        }
        return static_cast<T>(s);  // an integer always lies within float's range
    } else if constexpr (std::is_floating_point_v<S>) {
        // T's range is [-2^digits, 2^digits) (signed) or [0, 2^digits): both bounds are exact in S
        const S upper = std::ldexp(S(1), std::numeric_limits<T>::digits);
        const S lower = std::is_signed_v<T> ? -upper : S(0);
        if (!(s >= lower && s < upper) || std::trunc(s) != s) return std::nullopt;
        return static_cast<T>(s);
    } else {
        if (!std::in_range<T>(s)) return std::nullopt;
        return static_cast<T>(s);
    }
}

// The element types npy_array::as converts to: floating point and the integers (not bool, not characters).
template <class T>
concept npy_value = std::is_floating_point_v<T> ||
                    (std::is_integral_v<T> && !std::is_same_v<T, bool> && !std::is_same_v<T, char> &&
                     !std::is_same_v<T, wchar_t> && !std::is_same_v<T, char8_t> && !std::is_same_v<T, char16_t> &&
                     !std::is_same_v<T, char32_t>);

template <class S>
[[nodiscard]] std::string npy_value_text(S s) {
    std::ostringstream os;
    os.precision(17);
    os << +s;
    return os.str();
}

}  // namespace detail

struct npy_array {
    std::string dtype;                // e.g. "<f4"
    std::vector<std::size_t> shape;   // C order
    std::vector<unsigned char> bytes; // raw little-endian payload

    [[nodiscard]] std::size_t size() const {
        std::size_t n = 1;
        for (auto s : shape) n *= s;
        return n;
    }

    // The values converted to T: exact when T matches the stored dtype or holds every value of it;
    // a float target rounds to nearest. A value T cannot represent (NaN, ±inf, a fraction or one out of
    // range for an integer T; a float64 beyond float's range for float) throws diffuse::error naming
    // the element, as do an unknown dtype and bytes that do not match the shape.
    template <detail::npy_value T>
    [[nodiscard]] std::vector<T> as() const {
        constexpr std::string_view where = "npy_array::as";
        const std::size_t element = detail::npy_dtype_size(dtype);
        if (element == 0) diffuse::detail::fail(where, "unsupported dtype '" + dtype + "'");
        const auto need = detail::npy_checked_bytes(shape, element);
        if (!need || *need != bytes.size())
            diffuse::detail::fail(where, "the array holds " + std::to_string(bytes.size()) +
                                             " bytes, which does not match its shape and dtype " + dtype);
        std::vector<T> out(bytes.size() / element);
        auto load = [&]<class S>(S) {
            for (std::size_t i = 0; i < out.size(); ++i) {
                S s;
                std::memcpy(&s, bytes.data() + i * sizeof(S), sizeof(S));
                const auto v = detail::npy_convert<T>(s);
                if (!v)
                    diffuse::detail::fail(where, "element " + std::to_string(i) + " (" + detail::npy_value_text(s) + ", " +
                                                     dtype + ") is not representable in the requested type");
                out[i] = *v;
            }
        };
        if (dtype == "<f4") load(float{});
        else if (dtype == "<f8") load(double{});
        else if (dtype == "<i4") load(std::int32_t{});
        else if (dtype == "<i8") load(std::int64_t{});
        else if (dtype == "<u4") load(std::uint32_t{});
        else if (dtype == "<u8") load(std::uint64_t{});
        else load(std::uint8_t{});  // "|u1"
        return out;
    }
};

namespace detail {

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

inline constexpr unsigned char npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

// From the first 8 bytes (magic, version): how many bytes the header length takes (2 or 4).
[[nodiscard]] inline std::size_t npy_length_field_size(std::span<const unsigned char> first, std::string_view where,
                                                       const std::string& source) {
    if (first.size() < 6 || std::memcmp(first.data(), npy_magic, 6) != 0)
        diffuse::detail::fail(where, source + ": not an .npy file (bad magic)");
    if (first.size() < 8) diffuse::detail::fail(where, source + ": truncated before the format version");
    const int major = first[6], minor = first[7];
    if ((major != 1 && major != 2 && major != 3) || minor != 0)
        diffuse::detail::fail(where, source + ": unsupported format version " + std::to_string(major) + "." +
                                         std::to_string(minor));
    return major == 1 ? 2 : 4;
}

struct npy_header {
    std::string dtype;
    std::vector<std::size_t> shape;
    std::uint64_t data_bytes = 0;
};

// The header grammar of the top of this file, parsed strictly.
class npy_header_parser {
public:
    npy_header_parser(std::string_view text, std::string_view where, const std::string& source)
        : t_(text), where_(where), source_(source) {}

    npy_header parse(const npy_limits& limits) {
        npy_header h;
        bool have_descr = false, have_order = false, have_shape = false;
        skip_ws();
        expect('{');
        for (int items = 0; items < 3; ++items) {
            skip_ws();
            if (items > 0) {
                expect(',');
                skip_ws();
            }
            const std::string key = quoted();
            skip_ws();
            expect(':');
            skip_ws();
            if (key == "descr" && !have_descr) {
                have_descr = true;
                h.dtype = quoted();
                if (npy_dtype_size(h.dtype) == 0)
                    diffuse::detail::fail(where_, source_ + ": unsupported dtype '" + h.dtype +
                                                      "' (supported: <f4 <f8 <i4 <i8 <u4 <u8 |u1)");
            } else if (key == "fortran_order" && !have_order) {
                have_order = true;
                if (word("True")) diffuse::detail::fail(where_, source_ + ": Fortran order is not supported");
                if (!word("False")) error("fortran_order must be False or True");
            } else if (key == "shape" && !have_shape) {
                have_shape = true;
                h.shape = shape_tuple();
            } else {
                error((key == "descr" || key == "fortran_order" || key == "shape") ? "repeated key '" + key + "'"
                                                                                    : "unexpected key '" + key + "'");
            }
        }
        skip_ws();
        if (peek() == ',') {
            ++p_;
            skip_ws();
        }
        expect('}');
        skip_ws();
        if (p_ != t_.size()) error("unexpected text after the header dict");
        const auto bytes = npy_checked_bytes(h.shape, npy_dtype_size(h.dtype));
        if (!bytes) diffuse::detail::fail(where_, source_ + ": the byte size of the shape overflows 64 bits");
        if (*bytes > limits.max_data_bytes)
            diffuse::detail::fail(where_, source_ + ": the shape needs " + std::to_string(*bytes) +
                                              " bytes of data, more than the limit of " +
                                              std::to_string(limits.max_data_bytes) + " (npy_limits::max_data_bytes)");
        h.data_bytes = *bytes;
        return h;
    }

private:
    [[noreturn]] void error(const std::string& what) const {
        diffuse::detail::fail(where_, source_ + ": malformed header at byte " + std::to_string(p_) + " of the header: " + what);
    }
    [[nodiscard]] char peek() const noexcept { return p_ < t_.size() ? t_[p_] : '\0'; }
    void skip_ws() noexcept {
        while (p_ < t_.size() && (t_[p_] == ' ' || t_[p_] == '\t' || t_[p_] == '\r' || t_[p_] == '\n')) ++p_;
    }
    void expect(char c) {
        if (peek() != c) error(std::string("expected '") + c + "'");
        ++p_;
    }
    bool word(std::string_view w) {
        if (t_.substr(p_, w.size()) != w) return false;
        const char next = p_ + w.size() < t_.size() ? t_[p_ + w.size()] : '\0';
        if ((next >= 'A' && next <= 'Z') || (next >= 'a' && next <= 'z') || (next >= '0' && next <= '9') || next == '_')
            return false;  // "Falsey" is not False
        p_ += w.size();
        return true;
    }
    std::string quoted() {
        const char q = peek();
        if (q != '\'' && q != '"') error("expected a quoted string");
        const auto end = t_.find(q, p_ + 1);
        if (end == std::string_view::npos) error("unterminated string");
        const std::string_view s = t_.substr(p_ + 1, end - p_ - 1);
        for (char c : s)
            if (c == '\\' || static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f)
                error("unsupported character in a string");
        p_ = end + 1;
        return std::string(s);
    }
    std::size_t extent() {
        if (peek() < '0' || peek() > '9')
            error(peek() == '-' ? "a shape extent is negative" : "expected a non-negative integer in the shape");
        if (peek() == '0' && p_ + 1 < t_.size() && t_[p_ + 1] >= '0' && t_[p_ + 1] <= '9')
            error("a shape extent has a leading zero");
        std::size_t v = 0;
        while (peek() >= '0' && peek() <= '9') {
            const auto digit = std::size_t(peek() - '0');
            if (v > (std::numeric_limits<std::size_t>::max() - digit) / 10) error("a shape extent overflows");
            v = v * 10 + digit;
            ++p_;
        }
        return v;
    }
    std::vector<std::size_t> shape_tuple() {
        std::vector<std::size_t> shape;
        expect('(');
        skip_ws();
        if (peek() == ')') {
            ++p_;
            return shape;  // a scalar
        }
        for (;;) {
            shape.push_back(extent());
            skip_ws();
            if (peek() == ')') {
                if (shape.size() == 1) error("a one-element shape needs its trailing comma, as in (n,)");
                ++p_;
                return shape;
            }
            if (peek() != ',') error("expected ',' or ')' after a shape extent (a non-negative integer)");
            ++p_;
            skip_ws();
            if (peek() == ')') {
                ++p_;
                return shape;
            }
        }
    }

    std::string_view t_;
    std::string_view where_;
    const std::string& source_;
    std::size_t p_ = 0;
};

[[nodiscard]] inline std::uint64_t npy_header_length(std::span<const unsigned char> field) {
    std::uint64_t n = 0;
    for (std::size_t i = 0; i < field.size(); ++i) n |= std::uint64_t(field[i]) << (8 * i);
    return n;
}

inline void npy_check_header_length(std::uint64_t n, const npy_limits& limits, std::string_view where,
                                    const std::string& source) {
    if (n > limits.max_header_bytes)
        diffuse::detail::fail(where, source + ": the header has " + std::to_string(n) + " bytes, more than the limit of " +
                                         std::to_string(limits.max_header_bytes) + " (npy_limits::max_header_bytes)");
}

[[noreturn]] inline void npy_fail_payload(std::string_view where, const std::string& source, const std::string& have,
                                          std::uint64_t need) {
    diffuse::detail::fail(where, source + ": payload has " + have + " bytes, shape needs " + std::to_string(need));
}

}  // namespace detail

// Parses a whole .npy file held in memory (the bytes are copied into the result).
[[nodiscard]] inline npy_array parse_npy(std::span<const unsigned char> file, const npy_limits& limits = {}) {
    constexpr std::string_view where = "parse_npy";
    const std::string source = "the .npy input";
    const std::size_t length_size = detail::npy_length_field_size(file.first(file.size() < 8 ? file.size() : 8), where, source);
    if (file.size() < 8 + length_size) diffuse::detail::fail(where, source + ": truncated header");
    const std::uint64_t hlen = detail::npy_header_length(file.subspan(8, length_size));
    detail::npy_check_header_length(hlen, limits, where, source);
    const std::size_t hstart = 8 + length_size;
    if (hlen > file.size() - hstart) diffuse::detail::fail(where, source + ": header length exceeds the input");
    const std::string_view text(reinterpret_cast<const char*>(file.data() + hstart), std::size_t(hlen));
    auto h = detail::npy_header_parser(text, where, source).parse(limits);
    const auto payload = file.subspan(hstart + std::size_t(hlen));
    if (payload.size() != h.data_bytes) detail::npy_fail_payload(where, source, std::to_string(payload.size()), h.data_bytes);
    return npy_array{std::move(h.dtype), std::move(h.shape), std::vector<unsigned char>(payload.begin(), payload.end())};
}

// Reads the .npy file at `path` (the top of this header says what is checked and how much is read).
[[nodiscard]] inline npy_array read_npy(const std::string& path, const npy_limits& limits = {}) {
    constexpr std::string_view where = "read_npy";
    detail::bounded_input in(path, where);
    std::vector<unsigned char> prefix;
    in.append(prefix, 8);
    const std::size_t length_size = detail::npy_length_field_size(prefix, where, path);
    if (in.append(prefix, length_size) != length_size) diffuse::detail::fail(where, path + ": truncated header");
    const std::uint64_t hlen = detail::npy_header_length(std::span<const unsigned char>(prefix).subspan(8));
    detail::npy_check_header_length(hlen, limits, where, path);
    std::vector<unsigned char> text;
    if (in.append(text, hlen) != hlen) diffuse::detail::fail(where, path + ": header length exceeds the file");
    auto h = detail::npy_header_parser(std::string_view(reinterpret_cast<const char*>(text.data()), text.size()), where, path)
                 .parse(limits);
    if (const auto size = in.regular_size()) {  // the data size is known before any of it is read
        const std::uint64_t before = prefix.size() + hlen;  // the prefix and header were read from it
        const std::uint64_t have = *size > before ? *size - before : 0;
        if (have != h.data_bytes) detail::npy_fail_payload(where, path, std::to_string(have), h.data_bytes);
    }
    npy_array a{std::move(h.dtype), std::move(h.shape), {}};
    if (const auto got = in.append(a.bytes, h.data_bytes); got != h.data_bytes)
        detail::npy_fail_payload(where, path, std::to_string(got), h.data_bytes);
    if (!in.at_end()) detail::npy_fail_payload(where, path, "more than " + std::to_string(h.data_bytes), h.data_bytes);
    return a;
}

namespace detail {
// The magic, version 1.0, header length and header of a C-order array of `descr` and `shape`, padded so the
// data starts at a multiple of 64 bytes (as numpy writes it).
[[nodiscard]] inline std::vector<unsigned char> npy_header_bytes(std::string_view descr, const std::vector<std::size_t>& shape,
                                                                 std::string_view where) {
    std::string s = "(";
    for (auto d : shape) s += std::to_string(d) + ", ";
    if (shape.size() > 1) s.resize(s.size() - 2);
    s += ")";
    std::string h = "{'descr': '" + std::string(descr) + "', 'fortran_order': False, 'shape': " + s + ", }";
    const std::size_t total = 10 + h.size() + 1;
    h.append((64 - total % 64) % 64, ' ');
    h += '\n';
    if (h.size() > 0xffff) diffuse::detail::fail(where, "the shape has too many dimensions for a version 1.0 header");
    const unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, static_cast<unsigned char>(h.size() & 0xff),
                                   static_cast<unsigned char>(h.size() >> 8)};
    std::vector<unsigned char> out(sizeof pre + h.size());
    std::memcpy(out.data(), pre, sizeof pre);
    std::memcpy(out.data() + sizeof pre, h.data(), h.size());
    return out;
}
}  // namespace detail

// Writes `data` (row-major, `shape`) as a version 1.0 .npy file, all or nothing (io/file.hpp).
template <class T>
void write_npy(const std::string& path, std::span<const T> data, const std::vector<std::size_t>& shape) {
    constexpr std::string_view where = "write_npy";
    const auto bytes = detail::npy_checked_bytes(shape, sizeof(T));
    if (!bytes || *bytes != data.size_bytes())
        diffuse::detail::fail(where, "the shape does not hold the " + std::to_string(data.size()) + " values of the data");
    const auto header = detail::npy_header_bytes(detail::npy_dtype_of<T>(), shape, where);
    const std::span<const unsigned char> parts[] = {header, {reinterpret_cast<const unsigned char*>(data.data()), data.size_bytes()}};
    write_file(path, parts, where);
}

// A .npy file of a shape known in advance, written row by row (e.g. a sampler's trajectory, one state per
// step, never held in memory): the header is written first, append() adds values in C order, and
// publish() checks that exactly the shape's values arrived and renames the file into place (io/file.hpp's
// file_writer: until then the target is untouched, and a writer dropped early removes its temporary).
template <class T>
class npy_writer {
public:
    npy_writer(const std::string& path, const std::vector<std::size_t>& shape) : out_(path, "npy_writer") {
        const auto bytes = detail::npy_checked_bytes(shape, sizeof(T));
        if (!bytes) diffuse::detail::fail("npy_writer", path + ": the shape's size overflows");
        expected_ = *bytes / sizeof(T);
        out_.write(detail::npy_header_bytes(detail::npy_dtype_of<T>(), shape, "npy_writer"));
    }
    void append(std::span<const T> values) {
        if (values.size() > expected_ - written_)
            diffuse::detail::fail("npy_writer", out_.path() + ": more values than the shape holds (" + std::to_string(expected_) + ")");
        out_.write({reinterpret_cast<const unsigned char*>(values.data()), values.size_bytes()});
        written_ += values.size();
    }
    [[nodiscard]] std::uint64_t written() const noexcept { return written_; }
    void finish() {
        if (written_ != expected_)
            diffuse::detail::fail("npy_writer", out_.path() + ": " + std::to_string(written_) + " values written, the shape holds " +
                                                    std::to_string(expected_));
        out_.finish();
    }
    void publish() {
        finish();
        out_.publish();
    }

private:
    file_writer out_;
    std::uint64_t expected_ = 0, written_ = 0;
};

}  // namespace diffuse::io
