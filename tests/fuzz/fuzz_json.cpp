// libFuzzer target for the JSON parser (io/json.hpp): any bytes either parse into a value that keeps the
// parser's guarantees or throw diffuse::error. A crash, a sanitizer report or a trap is a bug.
// Guarantees checked on every accepted document: nesting within json_limits::max_depth; numbers finite and
// equal to their literal text parsed again (so overflow never passes, underflow is ±0); as_uint64/as_int64
// either give the literal's integer or throw diffuse::error; strings valid UTF-8 that json_quote turns back
// into the same string. The same bytes are also parsed with duplicate keys allowed and with a depth limit of
// 3 (a stricter limit may only reject more).
// Built with -DDIFFUSE_FUZZ_REPLAY it is the CTest program fuzz_json_replay (tests/fuzz/replay.hpp).
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "diffuse/io/json.hpp"

namespace {
using diffuse::io::json_value;

void check_integer_views(const json_value& v) {
    try {
        const std::uint64_t u = v.as_uint64();
        if (std::to_string(u) != v.number_text()) __builtin_trap();  // the literal is that integer, exactly
    } catch (const diffuse::error&) {
    }
    try {
        const std::int64_t i = v.as_int64();
        if (std::to_string(i) != v.number_text() && !(i == 0 && v.number_text() == "-0")) __builtin_trap();
    } catch (const diffuse::error&) {
    }
}

void check_value(const json_value& v, std::size_t depth, std::size_t max_depth) {
    switch (v.type()) {
        case json_value::kind::number: {
            const double d = v.as_number();
            if (!std::isfinite(d)) __builtin_trap();
            const auto reparsed = diffuse::io::parse_json(v.number_text()).as_number();
            if (std::memcmp(&reparsed, &d, sizeof d) != 0) __builtin_trap();
            check_integer_views(v);
            break;
        }
        case json_value::kind::string:
            if (diffuse::io::parse_json(diffuse::io::json_quote(v.as_string())).as_string() != v.as_string()) __builtin_trap();
            break;
        case json_value::kind::array:
        case json_value::kind::object:
            if (depth + 1 > max_depth) __builtin_trap();
            if (v.is_array())
                for (const auto& e : v.as_array()) check_value(e, depth + 1, max_depth);
            else
                for (const auto& [key, e] : v.as_object()) {
                    if (diffuse::io::parse_json(diffuse::io::json_quote(key)).as_string() != key) __builtin_trap();
                    if (v.find(key) == nullptr) __builtin_trap();
                    check_value(e, depth + 1, max_depth);
                }
            break;
        default: break;
    }
}

// true when the input is one valid JSON document under the default limits.
bool parse_document(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    bool accepted = false;
    try {
        const auto v = diffuse::io::parse_json(text);
        check_value(v, 0, diffuse::io::json_limits{}.max_depth);
        accepted = true;
    } catch (const diffuse::error&) {
    }
    diffuse::io::json_limits lenient;
    lenient.allow_duplicate_keys = true;
    try {
        (void)diffuse::io::parse_json(text, lenient);
    } catch (const diffuse::error&) {
    }
    diffuse::io::json_limits shallow;
    shallow.max_depth = 3;
    try {
        const auto v = diffuse::io::parse_json(text, shallow);
        if (!accepted) __builtin_trap();  // a stricter limit accepts nothing the default rejects
        check_value(v, 0, shallow.max_depth);
    } catch (const diffuse::error&) {
    }
    return accepted;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    (void)parse_document(data, size);
    return 0;
}

#ifdef DIFFUSE_FUZZ_REPLAY
#include "replay.hpp"
int main(int argc, char** argv) { return diffuse_fuzz::replay_main(argc, argv, parse_document); }
#endif
