#pragma once
// A small, strict JSON parser (RFC 8259) for untrusted input: safetensors headers, diffusers
// config.json, command-line specs.
//
//   auto v = diffuse::io::parse_json(text);            // throws diffuse::error on any defect
//   v.at("num_train_timesteps").as_uint64();            // exact integers from the literal's digits
//   if (const auto* b = v.find("beta_start")) b->as_number();
//
// Strictness: one value surrounded by optional whitespace (space, tab, LF, CR); no comments, no
// trailing commas, no leading zeros, no NaN/Infinity (unless json_limits::allow_nonfinite_numbers: Python's extensions), no control characters inside strings, only the
// eight escapes and \uXXXX with properly paired surrogates, valid UTF-8 (no overlong forms, no
// surrogates, nothing above U+10FFFF). Numbers are rounded to the nearest double (subnormals kept): one
// whose magnitude rounds beyond the largest double (about 1.8e308) is rejected, one that rounds below the
// smallest subnormal (about 4.9e-324) becomes 0 with its sign (-1e-400 is -0.0); this holds however the
// literal is written (1 followed by 400 zeros then e-10 overflows; 0. then 400 zeros then 1 is 0). Duplicate object
// keys are rejected unless json_limits::allow_duplicate_keys. Nesting depth and input size are
// bounded (json_limits), so no input can exhaust the stack. Errors name the byte offset.
// Objects keep their members in document order.
//
// read_json_file(path) reads a file through io/file.hpp's bounded read: at most json_limits::max_size
// bytes are read from any file, device or pipe (/dev/zero is refused after max_size bytes, a larger
// regular file before any byte is read).

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include "diffuse/core/error.hpp"
#include "diffuse/io/file.hpp"

namespace diffuse::io {

struct json_limits {
    std::size_t max_depth = 64;              // nesting of arrays and objects
    std::size_t max_size = 100'000'000;      // bytes of input
    bool allow_duplicate_keys = false;
    // Python's json extensions NaN, Infinity and -Infinity as numbers (diffusers writes lambda_min_clipped = -inf
    // so into every DPM-Solver scheduler_config.json).
    bool allow_nonfinite_numbers = false;
};

class json_value {
public:
    enum class kind { null, boolean, number, string, array, object };
    using array_type = std::vector<json_value>;
    using object_type = std::vector<std::pair<std::string, json_value>>;

    json_value() = default;
    static json_value make_bool(bool b) { json_value v; v.k_ = kind::boolean; v.b_ = b; return v; }
    static json_value make_number(double d, std::string text) {
        json_value v; v.k_ = kind::number; v.d_ = d; v.s_ = std::move(text); return v;
    }
    static json_value make_string(std::string s) { json_value v; v.k_ = kind::string; v.s_ = std::move(s); return v; }
    static json_value make_array(array_type a) {
        json_value v; v.k_ = kind::array; v.a_ = std::make_shared<array_type>(std::move(a)); return v;
    }
    static json_value make_object(object_type o) {
        json_value v; v.k_ = kind::object; v.o_ = std::make_shared<object_type>(std::move(o)); return v;
    }

    [[nodiscard]] kind type() const noexcept { return k_; }
    [[nodiscard]] bool is_null() const noexcept { return k_ == kind::null; }
    [[nodiscard]] bool is_bool() const noexcept { return k_ == kind::boolean; }
    [[nodiscard]] bool is_number() const noexcept { return k_ == kind::number; }
    [[nodiscard]] bool is_string() const noexcept { return k_ == kind::string; }
    [[nodiscard]] bool is_array() const noexcept { return k_ == kind::array; }
    [[nodiscard]] bool is_object() const noexcept { return k_ == kind::object; }

    [[nodiscard]] bool as_bool() const { expect(kind::boolean); return b_; }
    [[nodiscard]] double as_number() const { expect(kind::number); return d_; }
    [[nodiscard]] const std::string& as_string() const { expect(kind::string); return s_; }
    [[nodiscard]] const array_type& as_array() const { expect(kind::array); return *a_; }
    [[nodiscard]] const object_type& as_object() const { expect(kind::object); return *o_; }
    // The number's literal text exactly as written.
    [[nodiscard]] const std::string& number_text() const { expect(kind::number); return s_; }

    // A non-negative integer literal (no fraction, no exponent) that fits in 64 bits.
    [[nodiscard]] std::uint64_t as_uint64() const {
        expect(kind::number);
        std::uint64_t r = 0;
        const auto* e = s_.data() + s_.size();
        const auto res = std::from_chars(s_.data(), e, r);
        if (res.ec != std::errc{} || res.ptr != e)
            diffuse::detail::fail("json_value::as_uint64", "the number " + s_ + " is not a non-negative integer below 2^64");
        return r;
    }
    // An integer literal that fits in int64.
    [[nodiscard]] std::int64_t as_int64() const {
        expect(kind::number);
        std::int64_t r = 0;
        const auto* e = s_.data() + s_.size();
        const auto res = std::from_chars(s_.data(), e, r);
        if (res.ec != std::errc{} || res.ptr != e)
            diffuse::detail::fail("json_value::as_int64", "the number " + s_ + " is not an integer in the int64 range");
        return r;
    }

    // Member lookup in an object (first match); nullptr when absent.
    [[nodiscard]] const json_value* find(std::string_view key) const {
        expect(kind::object);
        for (const auto& [k, v] : *o_)
            if (k == key) return &v;
        return nullptr;
    }
    [[nodiscard]] const json_value& at(std::string_view key) const {
        const auto* v = find(key);
        if (!v) diffuse::detail::fail("json_value::at", "the object has no member \"" + std::string(key) + "\"");
        return *v;
    }
    [[nodiscard]] std::size_t size() const {
        if (k_ == kind::array) return a_->size();
        if (k_ == kind::object) return o_->size();
        diffuse::detail::fail("json_value::size", "the value is a " + std::string(name(k_)) + ", not an array or object");
    }

    [[nodiscard]] static constexpr std::string_view name(kind k) noexcept {
        switch (k) {
            case kind::null: return "null";
            case kind::boolean: return "boolean";
            case kind::number: return "number";
            case kind::string: return "string";
            case kind::array: return "array";
            case kind::object: return "object";
        }
        return "?";
    }

private:
    void expect(kind k) const {
        if (k_ != k) type_mismatch(k);
    }
    // Appended piece by piece: GCC 12 at -O3 warns (-Warray-bounds, a false positive) about an operator+
    // chain here once it is inlined into a caller.
    [[noreturn]] void type_mismatch(kind k) const {
        std::string what = "expected a ";
        what += name(k);
        what += " but the value is a ";
        what += name(k_);
        diffuse::detail::fail("json_value", what);
    }

    kind k_ = kind::null;
    bool b_ = false;
    double d_ = 0.0;
    std::string s_;
    std::shared_ptr<array_type> a_;
    std::shared_ptr<object_type> o_;
};

namespace detail {

class json_parser {
public:
    json_parser(std::string_view text, const json_limits& lim) : t_(text), lim_(lim) {}

    json_value parse_document() {
        if (t_.size() > lim_.max_size)
            diffuse::detail::fail("parse_json", "the input has " + std::to_string(t_.size()) + " bytes, more than the limit of " +
                                   std::to_string(lim_.max_size));
        skip_ws();
        json_value v = parse_value(0);
        skip_ws();
        if (p_ != t_.size()) error("unexpected content after the JSON value");
        return v;
    }

private:
    [[noreturn]] void error(const std::string& what) const {
        diffuse::detail::fail("parse_json", "at byte " + std::to_string(p_) + ": " + what);
    }
    [[nodiscard]] bool at_end() const noexcept { return p_ >= t_.size(); }
    [[nodiscard]] char peek() const noexcept { return at_end() ? '\0' : t_[p_]; }

    void skip_ws() noexcept {
        while (!at_end() && (t_[p_] == ' ' || t_[p_] == '\t' || t_[p_] == '\n' || t_[p_] == '\r')) ++p_;
    }
    void expect_literal(std::string_view lit) {
        if (t_.substr(p_, lit.size()) != lit) error("invalid literal (expected " + std::string(lit) + ")");
        p_ += lit.size();
    }

    json_value parse_value(std::size_t depth) {
        if (at_end()) error("unexpected end of input, expected a value");
        switch (peek()) {
            case 'n': expect_literal("null"); return {};
            case 't': expect_literal("true"); return json_value::make_bool(true);
            case 'f': expect_literal("false"); return json_value::make_bool(false);
            case '"': return json_value::make_string(parse_string());
            case '[': return parse_array(depth + 1);
            case '{': return parse_object(depth + 1);
            default:
                if (lim_.allow_nonfinite_numbers && (peek() == 'N' || peek() == 'I' || (peek() == '-' && p_ + 1 < t_.size() && t_[p_ + 1] == 'I')))
                    return parse_nonfinite();
                if (peek() == '-' || (peek() >= '0' && peek() <= '9')) return parse_number();
                error(std::string("unexpected character '") + printable(peek()) + "'");
        }
    }

    // A long literal in an error message: its first 40 characters, the count of the rest.
    static std::string abbreviated(const std::string& text) {
        if (text.size() <= 48) return text;
        return text.substr(0, 40) + "... (" + std::to_string(text.size()) + " characters)";
    }

    static std::string printable(char c) {
        const auto u = static_cast<unsigned char>(c);
        if (u >= 0x20 && u < 0x7f) return std::string(1, c);
        const char* hex = "0123456789abcdef";
        return std::string("\\x") + hex[u >> 4] + hex[u & 15];
    }

    void check_depth(std::size_t depth) const {
        if (depth > lim_.max_depth)
            diffuse::detail::fail("parse_json", "at byte " + std::to_string(p_) + ": nesting depth exceeds the limit of " +
                                   std::to_string(lim_.max_depth));
    }

    json_value parse_array(std::size_t depth) {
        check_depth(depth);
        ++p_;  // '['
        json_value::array_type a;
        skip_ws();
        if (peek() == ']') {
            ++p_;
            return json_value::make_array(std::move(a));
        }
        for (;;) {
            skip_ws();
            a.push_back(parse_value(depth));
            skip_ws();
            if (peek() == ',') {
                ++p_;
                continue;
            }
            if (peek() == ']') {
                ++p_;
                return json_value::make_array(std::move(a));
            }
            error(at_end() ? "unexpected end of input inside an array" : "expected ',' or ']' in an array");
        }
    }

    json_value parse_object(std::size_t depth) {
        check_depth(depth);
        ++p_;  // '{'
        json_value::object_type o;
        std::unordered_set<std::string> seen;  // the keys so far, when duplicates are refused
        skip_ws();
        if (peek() == '}') {
            ++p_;
            return json_value::make_object(std::move(o));
        }
        for (;;) {
            skip_ws();
            if (peek() != '"') error(at_end() ? "unexpected end of input inside an object" : "expected a string key");
            const std::size_t key_pos = p_;
            std::string key = parse_string();
            if (!lim_.allow_duplicate_keys && !seen.insert(key).second) {  // hashed: linear in the object's size
                p_ = key_pos;
                error("duplicate key \"" + key + "\"");
            }
            skip_ws();
            if (peek() != ':') error("expected ':' after an object key");
            ++p_;
            skip_ws();
            json_value v = parse_value(depth);
            o.emplace_back(std::move(key), std::move(v));
            skip_ws();
            if (peek() == ',') {
                ++p_;
                continue;
            }
            if (peek() == '}') {
                ++p_;
                return json_value::make_object(std::move(o));
            }
            error(at_end() ? "unexpected end of input inside an object" : "expected ',' or '}' in an object");
        }
    }

    // For a valid, non-zero JSON number literal: D such that 10^D <= |value| < 10^(D+1) (only its sign
    // matters here). Digit counts and the exponent are clamped to about ±2^61, so no literal, however long,
    // overflows the sum.
    [[nodiscard]] static std::int64_t decimal_magnitude(std::string_view num) {
        constexpr std::int64_t clamp = std::int64_t{1} << 61;
        std::size_t i = num[0] == '-' ? 1 : 0;
        const std::size_t int_begin = i;
        while (i < num.size() && num[i] >= '0' && num[i] <= '9') ++i;
        const std::size_t int_end = i;
        std::size_t frac_begin = int_end, frac_end = int_end;
        if (i < num.size() && num[i] == '.') {
            frac_begin = ++i;
            while (i < num.size() && num[i] >= '0' && num[i] <= '9') ++i;
            frac_end = i;
        }
        std::int64_t exponent = 0;
        if (i < num.size()) {  // 'e' or 'E'
            ++i;
            const bool negative = num[i] == '-';
            if (num[i] == '+' || num[i] == '-') ++i;
            for (; i < num.size(); ++i) exponent = exponent >= clamp / 10 ? clamp : exponent * 10 + (num[i] - '0');
            if (negative) exponent = -exponent;
        }
        auto clamped = [&](std::size_t n) { return std::int64_t(std::min<std::size_t>(n, std::size_t(clamp))); };
        // position of the leading non-zero digit: in the integer part (10^(digits after it)) or the fraction
        for (std::size_t k = int_begin; k < int_end; ++k)
            if (num[k] != '0') return clamped(int_end - k - 1) + exponent;
        for (std::size_t k = frac_begin; k < frac_end; ++k)
            if (num[k] != '0') return -clamped(k - frac_begin + 1) + exponent;
        return exponent;  // zero: never out of range
    }

    // NaN, Infinity, -Infinity (json_limits::allow_nonfinite_numbers).
    json_value parse_nonfinite() {
        if (peek() == 'N') {
            expect_literal("NaN");
            return json_value::make_number(std::numeric_limits<double>::quiet_NaN(), "NaN");
        }
        const bool negative = peek() == '-';
        if (negative) ++p_;
        expect_literal("Infinity");
        const double inf = std::numeric_limits<double>::infinity();
        return json_value::make_number(negative ? -inf : inf, negative ? "-Infinity" : "Infinity");
    }

    json_value parse_number() {
        const std::size_t start = p_;
        auto digit = [&] { return !at_end() && t_[p_] >= '0' && t_[p_] <= '9'; };
        if (peek() == '-') ++p_;
        if (!digit()) error("expected a digit");
        if (t_[p_] == '0') {
            ++p_;
            if (digit()) error("leading zeros are not allowed");
        } else
            while (digit()) ++p_;
        if (peek() == '.') {
            ++p_;
            if (!digit()) error("expected a digit after the decimal point");
            while (digit()) ++p_;
        }
        if (peek() == 'e' || peek() == 'E') {
            ++p_;
            if (peek() == '+' || peek() == '-') ++p_;
            if (!digit()) error("expected a digit in the exponent");
            while (digit()) ++p_;
        }
        std::string text(t_.substr(start, p_ - start));
        double d = 0.0;
        const auto res = std::from_chars(text.data(), text.data() + text.size(), d);
        if (res.ec == std::errc::result_out_of_range) {
            // from_chars reports both overflow (beyond ±DBL_MAX) and underflow (below half the smallest
            // subnormal) as out of range; the decimal exponent of the leading significant digit tells them
            // apart (>= 308 for overflow, <= -324 for underflow; nothing in between is out of range).
            if (decimal_magnitude(text) >= 0) {
                p_ = start;
                error("the number " + abbreviated(text) + " does not fit in a double");
            }
            d = text[0] == '-' ? -0.0 : 0.0;
        } else if (res.ec != std::errc{} || res.ptr != text.data() + text.size() || !std::isfinite(d)) {
            p_ = start;
            error("invalid number " + abbreviated(text));
        }
        return json_value::make_number(d, std::move(text));
    }

    unsigned hex4() {
        if (p_ + 4 > t_.size()) error("truncated \\u escape");
        unsigned v = 0;
        for (int i = 0; i < 4; ++i) {
            const char c = t_[p_++];
            v <<= 4;
            if (c >= '0' && c <= '9') v |= unsigned(c - '0');
            else if (c >= 'a' && c <= 'f') v |= unsigned(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F') v |= unsigned(c - 'A' + 10);
            else error("invalid hex digit in a \\u escape");
        }
        return v;
    }

    static void append_utf8(std::string& s, std::uint32_t cp) {
        if (cp < 0x80) s += char(cp);
        else if (cp < 0x800) {
            s += char(0xC0 | (cp >> 6));
            s += char(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            s += char(0xE0 | (cp >> 12));
            s += char(0x80 | ((cp >> 6) & 0x3F));
            s += char(0x80 | (cp & 0x3F));
        } else {
            s += char(0xF0 | (cp >> 18));
            s += char(0x80 | ((cp >> 12) & 0x3F));
            s += char(0x80 | ((cp >> 6) & 0x3F));
            s += char(0x80 | (cp & 0x3F));
        }
    }

    // Validates one UTF-8 sequence starting at p_ (first byte >= 0x80) and appends it.
    void copy_utf8(std::string& s) {
        const auto b0 = static_cast<unsigned char>(t_[p_]);
        std::size_t n;
        std::uint32_t cp, min;
        if (b0 >= 0xC2 && b0 <= 0xDF) n = 1, cp = b0 & 0x1F, min = 0x80;
        else if (b0 >= 0xE0 && b0 <= 0xEF) n = 2, cp = b0 & 0x0F, min = 0x800;
        else if (b0 >= 0xF0 && b0 <= 0xF4) n = 3, cp = b0 & 0x07, min = 0x10000;
        else error("invalid UTF-8 lead byte");
        if (p_ + n >= t_.size()) error("truncated UTF-8 sequence");
        for (std::size_t i = 1; i <= n; ++i) {
            const auto c = static_cast<unsigned char>(t_[p_ + i]);
            if ((c & 0xC0) != 0x80) error("invalid UTF-8 continuation byte");
            cp = (cp << 6) | (c & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) error("invalid UTF-8 code point");
        s.append(t_.substr(p_, n + 1));
        p_ += n + 1;
    }

    std::string parse_string() {
        ++p_;  // opening quote
        std::string s;
        for (;;) {
            if (at_end()) error("unterminated string");
            const char c = t_[p_];
            const auto u = static_cast<unsigned char>(c);
            if (c == '"') {
                ++p_;
                return s;
            }
            if (u < 0x20) error("control character in a string");
            if (u >= 0x80) {
                copy_utf8(s);
                continue;
            }
            if (c != '\\') {
                s += c;
                ++p_;
                continue;
            }
            ++p_;
            if (at_end()) error("unterminated escape");
            const char e = t_[p_++];
            switch (e) {
                case '"': s += '"'; break;
                case '\\': s += '\\'; break;
                case '/': s += '/'; break;
                case 'b': s += '\b'; break;
                case 'f': s += '\f'; break;
                case 'n': s += '\n'; break;
                case 'r': s += '\r'; break;
                case 't': s += '\t'; break;
                case 'u': {
                    std::uint32_t cp = hex4();
                    if (cp >= 0xDC00 && cp <= 0xDFFF) error("unpaired low surrogate in a \\u escape");
                    if (cp >= 0xD800 && cp <= 0xDBFF) {
                        if (t_.substr(p_, 2) != "\\u") error("unpaired high surrogate in a \\u escape");
                        p_ += 2;
                        const std::uint32_t lo = hex4();
                        if (lo < 0xDC00 || lo > 0xDFFF) error("invalid low surrogate in a \\u escape");
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    }
                    append_utf8(s, cp);
                    break;
                }
                default: --p_; error("invalid escape character");
            }
        }
    }

    std::string_view t_;
    const json_limits& lim_;
    std::size_t p_ = 0;
};

}  // namespace detail

[[nodiscard]] inline json_value parse_json(std::string_view text, const json_limits& limits = {}) {
    return detail::json_parser(text, limits).parse_document();
}

// The JSON document in the file at `path` (parse_json of its bytes); errors name the file.
[[nodiscard]] inline json_value read_json_file(const std::string& path, const json_limits& limits = {}) {
    const auto bytes = read_file(path, limits.max_size, "read_json_file");
    try {
        return parse_json(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), limits);
    } catch (const diffuse::error& e) {
        diffuse::detail::fail("read_json_file", path + ": " + e.what());
    }
}

// A JSON string literal (with quotes) for `s`, escaping what RFC 8259 requires. `s` must be UTF-8.
[[nodiscard]] inline std::string json_quote(std::string_view s) {
    std::string r = "\"";
    for (char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '"') r += "\\\"";
        else if (c == '\\') r += "\\\\";
        else if (u < 0x20) {
            const char* hex = "0123456789abcdef";
            r += "\\u00";
            r += hex[u >> 4];
            r += hex[u & 15];
        } else r += c;
    }
    return r + "\"";
}

}  // namespace diffuse::io
