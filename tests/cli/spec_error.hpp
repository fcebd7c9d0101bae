#pragma once
// For the tests of spec errors: the message of the spec_error a sampling spec raises through the CLI's runner
// (run_spec), or "" when the spec runs.
#include <filesystem>
#include <string>

#include "../../tools/diffuse/run_spec.hpp"
#include "diffuse/io/json.hpp"

namespace diffuse::test {

inline std::string spec_error_of(const std::string& spec_text, const std::filesystem::path& dir = ".") {
    try {
        diffuse::cli::run_spec(diffuse::io::parse_json(spec_text), dir);
    } catch (const diffuse::cli::spec_error& e) {
        return e.what();
    }
    return "";
}

}  // namespace diffuse::test
