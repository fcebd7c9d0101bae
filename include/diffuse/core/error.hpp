#pragma once
// diffuse::error: the one exception type for invalid arguments.
// Messages name the parameter, the value received and the accepted range, e.g.
//   diffuse: linear_betas: beta_end = 1.5 is outside the accepted range (0, 1)

#include <cstddef>
#include <cstdint>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace diffuse {

class error : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

namespace detail {

template <class V>
[[nodiscard]] std::string describe(std::string_view where, std::string_view param, const V& value,
                                   std::string_view accepted) {
    std::ostringstream os;
    os.precision(17);
    os << "diffuse: " << where << ": " << param << " = " << value << " is outside the accepted range "
       << accepted;
    return os.str();
}

// Throws diffuse::error unless `ok`; `accepted` describes the valid range, e.g. "(0, 1)" or ">= 1".
template <class V>
void require(bool ok, std::string_view where, std::string_view param, const V& value,
             std::string_view accepted) {
    if (!ok) throw error(describe(where, param, value, accepted));
}

// The largest count a schedule, grid or spacing accepts (steps, timesteps, grid points): 2^24, the range in
// which every index is exact in float32 and n + 1 values of double fit in 128 MiB. A larger count is a
// mistake — a negative number converted to std::size_t, or an n whose n + 1 wraps to 0 — not a schedule.
inline constexpr std::size_t max_schedule_size = std::size_t{1} << 24;

// Throws diffuse::error unless min <= n <= max, before n is converted or n + 1 computed. A count in the top
// half of std::size_t is named as the negative number it most likely was.
inline void require_count(std::size_t n, std::string_view where, std::string_view param, std::size_t min = 1,
                          std::size_t max = max_schedule_size) {
    if (n >= min && n <= max) return;
    std::string accepted = ">= " + std::to_string(min) + " and <= " + std::to_string(max);
    if (n > std::numeric_limits<std::size_t>::max() / 2)
        accepted += " (" + std::to_string(n) + " is " + std::to_string(static_cast<std::int64_t>(n)) +
                    " converted to std::size_t)";
    throw error(describe(where, param, n, accepted));
}

// The message of an exception without the "diffuse: " prefix, for re-throwing with context (so the
// prefix appears once).
[[nodiscard]] inline std::string_view error_text(const std::exception& e) {
    std::string_view s = e.what();
    constexpr std::string_view prefix = "diffuse: ";
    if (s.substr(0, prefix.size()) == prefix) s.remove_prefix(prefix.size());
    return s;
}

// For failures that are not a single out-of-range value (mismatched shapes, corrupt files).
[[noreturn]] inline void fail(std::string_view where, std::string_view what) {
    throw error("diffuse: " + std::string(where) + ": " + std::string(what));
}

}  // namespace detail
}  // namespace diffuse
