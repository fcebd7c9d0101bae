#include <catch2/catch.hpp>
#include <rapidcheck/catch.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "diffuse/io/safetensors.hpp"

using Catch::Matchers::Contains;
using diffuse::io::parse_safetensors;

namespace {
std::vector<unsigned char> make_file(const std::string& header, std::size_t data_bytes, std::uint64_t declared = ~0ull) {
    const std::uint64_t n = declared == ~0ull ? header.size() : declared;
    std::vector<unsigned char> f;
    f.reserve(8 + header.size() + data_bytes);
    for (int i = 0; i < 8; ++i) f.push_back(static_cast<unsigned char>(n >> (8 * i)));
    for (char c : header) f.push_back(static_cast<unsigned char>(c));
    for (std::size_t i = 0; i < data_bytes; ++i) f.push_back(static_cast<unsigned char>(i));
    return f;
}
}  // namespace

TEST_CASE("safetensors: writer and reader round-trip", "[io][safetensors]") {
    diffuse::io::safetensors_writer w;
    const std::vector<float> a{1.f, -2.f, 3.5f, 0.f, 1e-30f, 7.f};
    const std::vector<double> b{3.141592653589793};
    w.add("a", {2, 3}, std::span<const float>(a));
    w.add("b\"q", {1}, std::span<const double>(b));
    w.add("empty", {0, 4}, std::span<const float>());
    w.set_metadata("format", "test");
    const auto bytes = w.to_bytes();
    const auto st = parse_safetensors(bytes);
    CHECK(st.entries().size() == 3);
    CHECK(st.metadata().at("format") == "test");
    CHECK(st.as<float>("a") == a);
    CHECK(st.as<double>("b\"q") == b);
    CHECK(st.at("a").shape == std::vector<std::uint64_t>{2, 3});
    CHECK(st.as<float>("empty").empty());
    CHECK_THROWS_WITH(st.at("c"), Contains("no tensor named \"c\""));
    CHECK_THROWS_AS(w.add("a", {1}, std::span<const float>(a.data(), 1)), diffuse::error);
    CHECK_THROWS_AS(w.add("x", {5}, std::span<const float>(a)), diffuse::error);
}

TEST_CASE("safetensors: F16 and BF16 conversion", "[io][safetensors]") {
    // F16 1.0 = 0x3c00, -2.0 = 0xc000, smallest subnormal 0x0001; BF16 1.0 = 0x3f80
    std::string h = R"({"h":{"dtype":"F16","shape":[3],"data_offsets":[0,6]},"g":{"dtype":"BF16","shape":[1],"data_offsets":[6,8]}})";
    auto f = make_file(h, 0);
    const unsigned char data[] = {0x00, 0x3c, 0x00, 0xc0, 0x01, 0x00, 0x80, 0x3f};
    for (unsigned char c : data) f.push_back(c);
    const auto st = parse_safetensors(f);
    const auto v = st.as<double>("h");
    CHECK(v[0] == 1.0);
    CHECK(v[1] == -2.0);
    CHECK(v[2] == std::ldexp(1.0, -24));
    CHECK(st.as<float>("g")[0] == 1.0f);
}

TEST_CASE("safetensors rejects corrupt, truncated, overlapping and oversized files", "[io][safetensors][errors]") {
    const std::string ok = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"U8","shape":[2],"data_offsets":[8,10]}})";
    CHECK_NOTHROW(parse_safetensors(make_file(ok, 10)));
    struct bad_case {
        std::string header;
        std::size_t data;
        const char* message;
    };
    const bad_case cases[] = {
        {ok, 9, "truncated"},
        {ok, 11, "trailing bytes"},
        {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"U8","shape":[2],"data_offsets":[6,8]}})", 8, "overlap"},
        {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[2,10]}})", 10, "gap"},
        {R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8, "need 12"},
        {R"({"a":{"dtype":"F31","shape":[2],"data_offsets":[0,8]}})", 8, "unknown dtype"},
        {R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8, "not a non-negative integer"},
        {R"({"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", 8, "not a non-negative integer"},
        {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8, "begin > end"},
        {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", 8, "two integers"},
        {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,18446744073709551616]}})", 8, "data_offsets"},
        {R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", 8, "overflows"},
        {R"({"a":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,8]}})", 8, "overflows"},
        {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1}})", 8, "unknown member"},
        {R"({"a":{"dtype":"F32","shape":[2]}})", 8, "needs dtype"},
        {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8, "duplicate key"},
        {R"({"__metadata__":{"k":1}})", 0, "not a string"},
        {R"([1,2])", 0, "not a JSON object"},
        {R"({"a":)", 0, "invalid JSON header"},
        {"{\"a\xff\":1}", 0, "invalid JSON header"},
        {R"({"a":[1]})", 0, "not an object"},
    };
    for (const auto& c : cases) {
        INFO(c.header);
        CHECK_THROWS_WITH(parse_safetensors(make_file(c.header, c.data)), Contains(c.message));
    }
    CHECK_THROWS_WITH(parse_safetensors(make_file("{}", 0, 200'000'000)), Contains("exceeds the limit"));
    CHECK_THROWS_WITH(parse_safetensors(make_file("{}", 0, 50)), Contains("runs past the end"));
    CHECK_THROWS_WITH(parse_safetensors(make_file("{}", 0, ~0ull - 1)), Contains("exceeds the limit"));
    const std::vector<unsigned char> tiny{1, 2, 3};
    CHECK_THROWS_WITH(parse_safetensors(tiny), Contains("fewer than the 8-byte"));
    CHECK_THROWS_WITH(diffuse::io::read_safetensors("/nonexistent/x.safetensors"), Contains("cannot open"));
    // every truncation of a valid file is rejected, never read out of bounds
    diffuse::io::safetensors_writer w;
    const std::vector<float> a{1, 2, 3};
    w.add("a", {3}, std::span<const float>(a));
    const auto full = w.to_bytes();
    for (std::size_t n = 0; n < full.size(); ++n)
        CHECK_THROWS_AS(parse_safetensors(std::span<const unsigned char>(full.data(), n)), diffuse::error);
}

TEST_CASE("safetensors: random corruption never crashes", "[io][safetensors]") {
    diffuse::io::safetensors_writer w;
    const std::vector<float> a{1, 2, 3, 4};
    w.add("weight", {2, 2}, std::span<const float>(a));
    w.add("bias", {2}, std::span<const float>(a.data(), 2));
    const auto full = w.to_bytes();
    rc::prop("flipping bytes gives a valid file or diffuse::error", [&](std::vector<std::pair<std::uint16_t, std::uint8_t>> edits) {
        auto f = full;
        for (auto [pos, val] : edits) f[pos % f.size()] = val;
        try {
            const auto st = parse_safetensors(f);
            for (const auto& e : st.entries()) RC_ASSERT(e.end <= f.size());
        } catch (const diffuse::error&) {
        }
    });
}
