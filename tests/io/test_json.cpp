#include <catch2/catch.hpp>
#include <rapidcheck/catch.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
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

TEST_CASE("parse_json numbers: overflow is rejected, underflow is ±0, however the literal is written",
          "[io][json][numbers]") {
    auto number = [](const std::string& s) { return parse_json(s).as_number(); };
    const std::string zeros(400, '0');
    // 1 followed by 400 zeros, times 10^-10, is 1e390: it overflows despite the negative exponent
    CHECK_THROWS_WITH(parse_json("1" + zeros + "e-10"), Contains("does not fit in a double"));
    CHECK_THROWS_WITH(parse_json("-1" + zeros + "e-10"), Contains("does not fit in a double"));
    CHECK_THROWS_AS(parse_json("1" + zeros), diffuse::error);
    CHECK(number("1" + zeros + "e-390") == 1e10);
    // 0.000…01 (10^-401), without an exponent, underflows to 0
    CHECK(number("0." + zeros + "1") == 0.0);
    CHECK(std::signbit(number("-0." + zeros + "1")));
    CHECK(number("0." + zeros + "1e400") == Approx(0.1).epsilon(1e-15));
    CHECK(number("0." + zeros + "1e500") == 1e99);
    CHECK_THROWS_AS(parse_json("0." + zeros + "1e800"), diffuse::error);
    // huge exponents, of either sign, and with many digits
    CHECK_THROWS_AS(parse_json("1e309"), diffuse::error);
    CHECK_THROWS_AS(parse_json("-1e309"), diffuse::error);
    CHECK_THROWS_AS(parse_json("1e99999999999999999999999999"), diffuse::error);
    CHECK_THROWS_AS(parse_json("1E+99999999999999999999999999"), diffuse::error);
    CHECK(number("1e-99999999999999999999999999") == 0.0);
    CHECK(number("0e99999999999999999999999999") == 0.0);
    CHECK(number("0.0e-99999999999999999999999999") == 0.0);
    CHECK(std::signbit(number("-1e-400")));
    CHECK(number("1e-400") == 0.0);
    CHECK_FALSE(std::signbit(number("1e-400")));
    // the edges of the double range: the largest double, the first literal that rounds beyond it
    CHECK(number("1.7976931348623157e308") == std::numeric_limits<double>::max());
    CHECK(number("1.7976931348623158e308") == std::numeric_limits<double>::max());
    CHECK_THROWS_AS(parse_json("1.7976931348623159e308"), diffuse::error);
    CHECK_THROWS_AS(parse_json("179769313486231590772930519078902473361797697894230657273430081157732675805500963132708477322407536021120113879871393357658789768814416622492847430639474124377767893424865485276302219601246094119453082952085005768838150682342462881473913110540827237163350510684586298239947245938479716304835356329624224137216"), diffuse::error);  // 2^1024
    // subnormals are kept, not flushed: the smallest one and the halfway point below it
    CHECK(number("4.9406564584124654e-324") == std::numeric_limits<double>::denorm_min());
    CHECK(number("2.4703282292062328e-324") == std::numeric_limits<double>::denorm_min());  // just above half
    CHECK(number("2.4703282292062327e-324") == 0.0);  // just below half: rounds to 0
    CHECK(number("1e-310") == Approx(1e-310).margin(0));
    CHECK(number("1e-310") > 0.0);
    CHECK(number("2.2250738585072011e-308") < std::numeric_limits<double>::min());  // the largest subnormal
    CHECK(number("2.2250738585072014e-308") == std::numeric_limits<double>::min());
    // -0 keeps its sign; the text stays as written
    CHECK(std::signbit(number("-0")));
    CHECK(std::signbit(number("-0.0e5")));
    CHECK(parse_json("-0").number_text() == "-0");
    CHECK(parse_json("0." + zeros + "1").number_text() == "0." + zeros + "1");
}

TEST_CASE("read_json_file reads at most json_limits::max_size bytes of any file", "[io][json][errors]") {
    const std::string path = "test_json_file.json";
    {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out << R"({"a": [1, 2]})";
    }
    CHECK(diffuse::io::read_json_file(path).at("a").size() == 2);
    diffuse::io::json_limits lim;
    lim.max_size = 5;
    CHECK_THROWS_WITH(diffuse::io::read_json_file(path, lim), Contains("more than the limit of 5 bytes"));
    {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out << R"({"a": [1, 2],})";
    }
    CHECK_THROWS_WITH(diffuse::io::read_json_file(path), Contains("read_json_file") && Contains(path) && Contains("at byte 13"));
    std::remove(path.c_str());
    CHECK_THROWS_WITH(diffuse::io::read_json_file("does/not/exist.json"), Contains("cannot open"));
    if (std::filesystem::exists("/dev/zero")) {
        // an endless device: refused once the limit is passed (the default 100 MB, and a small one)
        CHECK_THROWS_WITH(diffuse::io::read_json_file("/dev/zero"), Contains("more than the limit of 100000000 bytes"));
        lim.max_size = 4096;
        CHECK_THROWS_WITH(diffuse::io::read_json_file("/dev/zero", lim), Contains("more than the limit of 4096 bytes"));
    }
}

TEST_CASE("parse_json: duplicate keys are found in time linear in the object's size", "[io][json][errors]") {
    // 100,000 distinct keys: a pairwise check takes 5·10^9 comparisons (about 30 s); hashed, a fraction of a second
    std::string text = "{";
    for (int i = 0; i < 100000; ++i) text += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":0";
    const auto start = std::chrono::steady_clock::now();
    CHECK(parse_json(text + "}").size() == 100000);
    CHECK_THROWS_WITH(parse_json(text + ",\"k123\":1}"), Contains("duplicate key \"k123\""));
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));
}
