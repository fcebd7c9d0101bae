#pragma once
// diffuse::error: the one exception type for invalid arguments.
// Messages name the parameter, the value received and the accepted range, e.g.
//   diffuse: linear_betas: beta_end = 1.5 is outside the accepted range (0, 1)

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

// For failures that are not a single out-of-range value (mismatched shapes, corrupt files).
[[noreturn]] inline void fail(std::string_view where, std::string_view what) {
    throw error("diffuse: " + std::string(where) + ": " + std::string(what));
}

}  // namespace detail
}  // namespace diffuse
