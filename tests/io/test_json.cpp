#include <catch2/catch.hpp>
#include <rapidcheck/catch.h>

#include <string>

#include "diffuse/io/json.hpp"

using diffuse::io::parse_json;
using Catch::Matchers::Contains;

TEST_CASE("parse_json: values, nesting, order, exact integers", "[io][json]") {
    const auto v = parse_json(R"( {"a": [1, -2.5e3, true, false, null], "b": {"c": "x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"},
                                   "n": 18446744073709551615, "z": 0, "neg": -0.0, "tiny": 1e-400} )");
    REQUIRE(v.is_object());
    CHECK(v.size() == 6);
    CHECK(v.as_object()[0].first == "a");
    const auto& a = v.at("a").as_array();
    CHECK(a[0].as_number() == 1.0);
    CHECK(a[1].as_number() == -2500.0);
    CHECK(a[2].as_bool());
    CHECK_FALSE(a[3].as_bool());
    CHECK(a[4].is_null());
    CHECK(v.at("b").at("c").as_string() == "x\"\\/\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80");
    CHECK(v.at("n").as_uint64() == 18446744073709551615ull);
    CHECK(v.at("z").as_uint64() == 0);
    CHECK(v.at("tiny").as_number() == 0.0);
    CHECK(v.find("missing") == nullptr);
    CHECK_THROWS_WITH(v.at("missing"), Contains("no member \"missing\""));
    CHECK_THROWS_WITH(v.at("a").as_string(), Contains("expected a string but the value is a array"));
    CHECK_THROWS_WITH(a[1].as_uint64(), Contains("-2.5e3"));
    CHECK(parse_json("\"\xe2\x82\xac\"").as_string() == "\xe2\x82\xac");
    CHECK(parse_json("[]").size() == 0);
    CHECK(parse_json("{}").size() == 0);
    CHECK(parse_json("-12").as_int64() == -12);
}

TEST_CASE("parse_json rejects malformed input with the byte offset", "[io][json][errors]") {
    const char* bad[] = {"",        " ",        "{",          "[1,]",        "{\"a\":1,}", "[1 2]",   "01",
                         "1.",      "-",        "1e",         "+1",          "NaN",        "Infinity", "tru",
                         "\"abc",   "\"\\x\"",  "\"\\u12\"",  "\"\\ud800\"", "\"\\udc00\"", "{1:2}",   "{\"a\" 1}",
                         "[1] x",   "1e400",    "\"\t\"",     "\"\xff\"",    "\"\xc0\xaf\"", "\"\xed\xa0\x80\"",
                         "\"\xf4\x90\x80\x80\"", "\"\xe2\x82\"", "/*c*/1", "{\"a\":1,\"a\":2}"};
    for (const char* s : bad) {
        INFO(s);
        CHECK_THROWS_AS(parse_json(s), diffuse::error);
    }
    CHECK_THROWS_WITH(parse_json("[1,]"), Contains("at byte 3"));
    CHECK_THROWS_WITH(parse_json("{\"a\":1,\"a\":2}"), Contains("duplicate key \"a\""));
    diffuse::io::json_limits lim;
    lim.allow_duplicate_keys = true;
    CHECK(parse_json("{\"a\":1,\"a\":2}", lim).at("a").as_number() == 1.0);
    // depth limit: no stack exhaustion on deep nesting
    const std::string deep(100000, '[');
    CHECK_THROWS_WITH(parse_json(deep), Contains("nesting depth exceeds the limit of 64"));
    lim.max_depth = 3;
    CHECK(parse_json("[[[1]]]", lim).is_array());
    CHECK_THROWS_AS(parse_json("[[[[1]]]]", lim), diffuse::error);
    lim.max_size = 4;
    CHECK_THROWS_WITH(parse_json("[1, 2]", lim), Contains("more than the limit"));
}

TEST_CASE("parse_json never crashes on arbitrary bytes", "[io][json]") {
    rc::prop("random input parses or throws diffuse::error", [](const std::string& s) {
        try {
            (void)parse_json(s);
        } catch (const diffuse::error&) {
        }
    });
    rc::prop("quoted strings round-trip", [](const std::string& s0) {
        std::string s;
        for (char c : s0) if (static_cast<unsigned char>(c) < 0x80) s += c;  // ASCII keeps it valid UTF-8
        RC_ASSERT(parse_json(diffuse::io::json_quote(s)).as_string() == s);
    });
}
