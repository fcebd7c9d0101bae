#pragma once
// Reading a sampling spec's JSON (docs/cli.md): an object's fields by name, each read naming its path in
// errors ("spec.schedule.beta_start: expected a number"), unknown keys rejected (the files a spec names:
// spec_files.hpp). Every defect raises spec_error, whose message is that one line.

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "diffuse/io/json.hpp"

namespace diffuse::cli {

struct spec_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

class fields {
public:
    fields(const io::json_value* v, std::string path) : v_(v), path_(std::move(path)) {
        if (v_ && !v_->is_object()) throw spec_error(path_ + ": expected an object");
    }
    [[nodiscard]] const std::string& path() const noexcept { return path_; }
    [[nodiscard]] bool has(std::string_view k) const { return v_ && v_->find(k); }
    // The field's value (nullptr when absent), marked as read.
    [[nodiscard]] const io::json_value* raw(std::string_view k) {
        used_.insert(std::string(k));
        return v_ ? v_->find(k) : nullptr;
    }
    [[nodiscard]] std::string name(std::string_view k) const { return path_ + "." + std::string(k); }

    // Each reader returns the field's value, or def when the field is absent (required when def is empty).
    double number(std::string_view k, std::optional<double> def = {}) {
        return read(k, def, &io::json_value::is_number, &io::json_value::as_number, "expected a number");
    }
    bool boolean(std::string_view k, std::optional<bool> def = {}) {
        return read(k, def, &io::json_value::is_bool, &io::json_value::as_bool, "expected true or false");
    }
    std::string string(std::string_view k, std::optional<std::string> def = {}) {
        return read(k, def, &io::json_value::is_string, &io::json_value::as_string, "expected a string");
    }
    // A number within [lo, hi].
    double number_in(std::string_view k, double lo, double hi, std::optional<double> def = {}) {
        const double x = number(k, def);
        if (!(x >= lo && x <= hi)) {
            std::ostringstream s;
            s << name(k) << ": " << x << " is outside [" << lo << ", " << hi << "]";
            throw spec_error(s.str());
        }
        return x;
    }
    // A non-negative integer in [lo, hi].
    std::uint64_t count(std::string_view k, std::optional<std::uint64_t> def = {}, std::uint64_t lo = 0,
                        std::uint64_t hi = std::numeric_limits<std::uint64_t>::max()) {
        const auto* v = raw(k);
        if (!v) return required(k, def);
        std::uint64_t x = 0;
        try {
            x = v->as_uint64();
        } catch (const std::exception&) {
            throw spec_error(name(k) + ": expected a non-negative integer");
        }
        if (x < lo) throw spec_error(name(k) + ": " + std::to_string(x) + " is below the minimum " + std::to_string(lo));
        if (x > hi) throw spec_error(name(k) + ": " + std::to_string(x) + " is above the maximum " + std::to_string(hi));
        return x;
    }
    // One of the listed names.
    std::string choice(std::string_view k, std::initializer_list<std::string_view> names, std::optional<std::string> def = {}) {
        const auto s = string(k, def);
        std::string list;
        for (auto n : names) {
            if (s == n) return s;
            list += (list.empty() ? "" : ", ") + std::string(n);
        }
        throw spec_error(name(k) + ": \"" + s + "\" is not one of {" + list + "}");
    }
    // An array of numbers (nested arrays are flattened one level: a matrix reads row by row).
    std::vector<double> numbers(std::string_view k, std::optional<std::vector<double>> def = {}) {
        const auto* v = raw(k);
        if (!v) return required(k, def);
        if (!v->is_array()) throw spec_error(name(k) + ": expected an array of numbers");
        std::vector<double> out;
        for (const auto& e : v->as_array()) {
            if (e.is_number()) out.push_back(e.as_number());
            else if (e.is_array())
                for (const auto& f : e.as_array()) {
                    if (!f.is_number()) throw spec_error(name(k) + ": expected numbers");
                    out.push_back(f.as_number());
                }
            else throw spec_error(name(k) + ": expected an array of numbers");
        }
        return out;
    }
    // An array of non-negative integers below 10⁹ (labels, step indices); `what` names them in the error.
    std::vector<std::uint64_t> indices(std::string_view k, std::string_view what, std::optional<std::vector<double>> def = {}) {
        std::vector<std::uint64_t> out;
        for (double v : numbers(k, std::move(def))) {
            if (!(v >= 0 && v == std::floor(v) && v < 1e9)) throw spec_error(name(k) + ": expected " + std::string(what));
            out.push_back(std::uint64_t(v));
        }
        return out;
    }
    fields object(std::string_view k) {
        const auto* v = raw(k);
        return fields(v, name(k));
    }
    // Throws on keys nobody read (typos).
    void finish() const {
        if (!v_) return;
        for (const auto& [key, value] : v_->as_object())
            if (!used_.count(key)) throw spec_error(name(key) + ": unknown field");
    }

private:
    template <class V>
    V required(std::string_view k, const std::optional<V>& def) const {
        if (!def) throw spec_error(name(k) + ": missing (required)");
        return *def;
    }
    template <class V, class Get>
    V read(std::string_view k, const std::optional<V>& def, bool (io::json_value::*is)() const noexcept, Get get,
           std::string_view expected) {
        const auto* v = raw(k);
        if (!v) return required(k, def);
        if (!(v->*is)()) throw spec_error(name(k) + ": " + std::string(expected));
        return (v->*get)();
    }
    const io::json_value* v_;
    std::string path_;
    std::set<std::string> used_;
};

}  // namespace diffuse::cli
