#include <catch2/catch.hpp>
#include <rapidcheck/catch.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
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

// ---- memory-mapped reading -------------------------------------------------------------------

namespace {
namespace fs = std::filesystem;

// A fresh folder under the system temp folder, removed with everything in it at scope exit.
struct temp_folder {
    fs::path path;
    explicit temp_folder(const std::string& name) {
        static int counter = 0;
        path = fs::temp_directory_path() /
               ("diffuse_st_" + name + "_" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()) +
                "_" + std::to_string(counter++));
        fs::create_directories(path);
    }
    ~temp_folder() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    [[nodiscard]] std::string operator/(const std::string& file) const { return (path / file).string(); }
};

void write_bytes(const std::string& path, const std::vector<unsigned char>& bytes) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}
void write_text(const std::string& path, const std::string& text) {
    write_bytes(path, std::vector<unsigned char>(text.begin(), text.end()));
}

// A file with raw little-endian 16-bit values of the given dtype (F16 or BF16), one tensor "t".
std::vector<unsigned char> half_file(const std::string& dtype, const std::vector<std::uint16_t>& values) {
    const std::string header = R"({"t":{"dtype":")" + dtype + R"(","shape":[)" + std::to_string(values.size()) +
                               R"(],"data_offsets":[0,)" + std::to_string(2 * values.size()) + "]}}";
    auto f = make_file(header, 0);
    for (auto v : values) {
        f.push_back(static_cast<unsigned char>(v & 0xFF));
        f.push_back(static_cast<unsigned char>(v >> 8));
    }
    return f;
}

// References computed from the bit fields by ldexp arithmetic (not by bit reinterpretation).
double half_reference(std::uint16_t h) {
    const double sign = (h & 0x8000) ? -1.0 : 1.0;
    const int exp = (h >> 10) & 0x1F, man = h & 0x3FF;
    if (exp == 0) return sign * std::ldexp(double(man), -24);
    if (exp == 31) return man == 0 ? sign * std::numeric_limits<double>::infinity() : std::numeric_limits<double>::quiet_NaN();
    return sign * std::ldexp(double(1024 + man), exp - 25);
}
double bf16_reference(std::uint16_t h) {
    const double sign = (h & 0x8000) ? -1.0 : 1.0;
    const int exp = (h >> 7) & 0xFF, man = h & 0x7F;
    if (exp == 0) return sign * std::ldexp(double(man), -133);
    if (exp == 255) return man == 0 ? sign * std::numeric_limits<double>::infinity() : std::numeric_limits<double>::quiet_NaN();
    return sign * std::ldexp(double(128 + man), exp - 134);
}
// Same value, and for zeros the same sign; NaN matches NaN of the same sign.
bool same_value(double got, double ref, std::uint16_t h) {
    if (std::isnan(ref)) return std::isnan(got) && std::signbit(got) == bool(h & 0x8000);
    return got == ref && std::signbit(got) == std::signbit(ref);
}

std::vector<std::uint16_t> all_16bit_patterns() {
    std::vector<std::uint16_t> v(65536);
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<std::uint16_t>(i);
    return v;
}
}  // namespace

TEST_CASE("safetensors: read_safetensors maps the file and reads back what the writer wrote", "[io][safetensors]") {
    temp_folder dir("mmap");
    diffuse::io::safetensors_writer w;
    std::vector<float> a(1000);
    for (std::size_t i = 0; i < a.size(); ++i) a[i] = float(i) * 0.25f - 7.f;
    const std::vector<double> b{3.141592653589793, -1e300, 0.0};
    w.add("down.0.weight", {10, 100}, std::span<const float>(a));
    w.add("down.0.bias", {3}, std::span<const double>(b));
    w.add("empty", {0}, std::span<const float>());
    w.set_metadata("format", "pt");
    w.write(dir / "m.safetensors");

    diffuse::io::safetensors_file copy;
    {
        const auto st = diffuse::io::read_safetensors(dir / "m.safetensors");
#if DIFFUSE_SAFETENSORS_HAS_MMAP
        CHECK(st.memory_mapped());
#endif
        CHECK(st.entries().size() == 3);
        CHECK(st.metadata().at("format") == "pt");
        CHECK(st.as<float>("down.0.weight") == a);
        CHECK(st.as<double>("down.0.bias") == b);
        std::vector<double> wd(1000);
        st.read_into(st.at("down.0.weight"), std::span<double>(wd));
        for (std::size_t i = 0; i < a.size(); ++i) REQUIRE(wd[i] == double(a[i]));
        std::vector<float> bf(3);
        // -1e300 lies beyond float's range: a named error (the conversion would be undefined behaviour)
        CHECK_THROWS_WITH(st.read_into(st.at("down.0.bias"), std::span<float>(bf)), Contains("beyond the range of float"));
        st.read_into(st.at("empty"), std::span<float>());
        copy = st;  // shares the mapping, which outlives `st`
    }
    CHECK(copy.as<float>("down.0.weight") == a);
    // the same bytes parsed from memory (copied, or taken over) give the same file, not mapped
    auto bytes = w.to_bytes();
    const auto from_span = parse_safetensors(std::span<const unsigned char>(bytes));
    const auto taken = parse_safetensors(std::move(bytes));
    CHECK_FALSE(taken.memory_mapped());
    CHECK(taken.as<float>("down.0.weight") == a);
    CHECK(from_span.as<double>("down.0.bias") == b);
    // the portable fallback reads the same bytes
    CHECK(diffuse::io::detail::read_file_bytes(dir / "m.safetensors", "test", ~0ull) == w.to_bytes());
    CHECK_THROWS_WITH(diffuse::io::detail::read_file_bytes(dir / "m.safetensors", "test", 10), Contains("more than the 10"));
}

TEST_CASE("safetensors: read_into checks the destination, the dtype and the file", "[io][safetensors][errors]") {
    const std::string h = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"ids":{"dtype":"I64","shape":[1],"data_offsets":[8,16]}})";
    const auto st = parse_safetensors(make_file(h, 16));
    std::vector<float> out(3);
    REQUIRE_THROWS_WITH(st.read_into(st.at("w"), std::span<float>(out)),
                        Contains("tensor \"w\" has 2 values but the destination holds 3"));
    REQUIRE_THROWS_WITH(st.read_into(st.at("ids"), std::span<float>(out.data(), 1)),
                        Contains("tensor \"ids\" has dtype I64, not a floating-point type"));
    REQUIRE_THROWS_WITH(st.as<double>("ids"), Contains("\"ids\" has dtype I64"));
    diffuse::io::safetensors_entry foreign{"far", "F32", {4}, 1000, 1016};
    REQUIRE_THROWS_WITH(st.read_into(foreign, std::span<float>(out.data(), 4)), Contains("\"far\" lies outside"));
    diffuse::io::safetensors_entry lying{"lying", "F32", {4}, 0, 8};  // shape claims 16 bytes, offsets 8
    std::vector<float> four(4);
    REQUIRE_THROWS_WITH(st.read_into(lying, std::span<float>(four)), Contains("\"lying\" does not match its bytes"));
}

TEST_CASE("safetensors: empty, missing and non-regular files are errors", "[io][safetensors][errors]") {
    temp_folder dir("bad_files");
    write_bytes(dir / "empty.safetensors", {});
    REQUIRE_THROWS_WITH(diffuse::io::read_safetensors(dir / "empty.safetensors"), Contains("is empty"));
    write_bytes(dir / "short.safetensors", {1, 0, 0});
    REQUIRE_THROWS_WITH(diffuse::io::read_safetensors(dir / "short.safetensors"), Contains("fewer than the 8-byte"));
    REQUIRE_THROWS_WITH(diffuse::io::read_safetensors(dir / "missing.safetensors"), Contains("cannot open"));
    REQUIRE_THROWS_WITH(diffuse::io::read_safetensors(dir.path.string()), Contains("is not a regular file"));
    REQUIRE_THROWS_WITH(diffuse::io::detail::read_file_bytes(dir.path.string(), "test", ~0ull), Contains("is not a regular file"));
    // a truncated file on disk names the defect and the path
    diffuse::io::safetensors_writer w;
    const std::vector<float> a{1, 2, 3};
    w.add("a", {3}, std::span<const float>(a));
    auto bytes = w.to_bytes();
    bytes.pop_back();
    write_bytes(dir / "cut.safetensors", bytes);
    REQUIRE_THROWS_WITH(diffuse::io::read_safetensors(dir / "cut.safetensors"),
                        Contains("cut.safetensors") && Contains("truncated file"));
}

// ---- F16 / BF16 ------------------------------------------------------------------------------

TEST_CASE("safetensors: every F16 and BF16 pattern converts exactly", "[io][safetensors]") {
    const auto patterns = all_16bit_patterns();
    for (const std::string dtype : {"F16", "BF16"}) {
        INFO(dtype);
        const auto st = parse_safetensors(half_file(dtype, patterns));
        std::vector<float> f(65536);
        std::vector<double> d(65536);
        st.read_into(st.at("t"), std::span<float>(f));
        st.read_into(st.at("t"), std::span<double>(d));
        const auto as_f = st.as<float>("t");
        std::size_t bad = 0;
        for (std::size_t i = 0; i < patterns.size(); ++i) {
            const auto h = patterns[i];
            const double ref = dtype == "F16" ? half_reference(h) : bf16_reference(h);
            if (!same_value(double(f[i]), ref, h) || !same_value(d[i], ref, h) || !same_value(double(as_f[i]), ref, h)) {
                if (bad++ < 5) FAIL_CHECK("pattern 0x" << std::hex << h << ": got " << f[i] << ", expected " << ref);
            }
        }
        CHECK(bad == 0);
    }
    // spot checks of the references themselves
    CHECK(half_reference(0x3c00) == 1.0);
    CHECK(half_reference(0x7bff) == 65504.0);
    CHECK(half_reference(0x0001) == std::ldexp(1.0, -24));
    CHECK(half_reference(0x0400) == std::ldexp(1.0, -14));
    CHECK(std::signbit(half_reference(0x8000)));
    CHECK(bf16_reference(0x3f80) == 1.0);
    CHECK(bf16_reference(0x0001) == std::ldexp(1.0, -133));
    CHECK(bf16_reference(0xff80) == -std::numeric_limits<double>::infinity());
}

TEST_CASE("safetensors: hand-built file with F16 and BF16 tensors", "[io][safetensors]") {
    // h: F16 [2,2] = {1, -2, 65504, smallest subnormal}; g: BF16 [3] = {1, -0, 3.140625}; x: F32 [1] = 0.5
    const std::string header =
        R"({"__metadata__":{"format":"pt"},"h":{"dtype":"F16","shape":[2,2],"data_offsets":[0,8]},)"
        R"("g":{"dtype":"BF16","shape":[3],"data_offsets":[8,14]},"x":{"dtype":"F32","shape":[1],"data_offsets":[14,18]}})";
    auto f = make_file(header, 0);
    const unsigned char data[] = {0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b, 0x01, 0x00,  // h
                                  0x80, 0x3f, 0x00, 0x80, 0x49, 0x40,              // g
                                  0x00, 0x00, 0x00, 0x3f};                         // x
    f.insert(f.end(), std::begin(data), std::end(data));
    const auto st = parse_safetensors(f);
    CHECK(st.at("h").shape == std::vector<std::uint64_t>{2, 2});
    std::vector<double> h(4);
    st.read_into(st.at("h"), std::span<double>(h));
    CHECK(h == std::vector<double>{1.0, -2.0, 65504.0, std::ldexp(1.0, -24)});
    std::vector<float> g(3);
    st.read_into(st.at("g"), std::span<float>(g));
    CHECK(g[0] == 1.0f);
    CHECK(g[1] == 0.0f);
    CHECK(std::signbit(g[1]));
    CHECK(g[2] == 3.140625f);
    CHECK(st.as<double>("x") == std::vector<double>{0.5});
    // the tensors are where the offsets say, whatever the header order
    CHECK(st.bytes(st.at("g")).data() == st.bytes(st.at("h")).data() + 8);
}

TEST_CASE("safetensors: each defect is named", "[io][safetensors][errors]") {
    struct bad_case {
        std::string header;
        std::size_t data;
        const char* message;
    };
    const bad_case cases[] = {
        // overlapping offsets, gap, trailing bytes, truncation: the tensor and the defect
        {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8,
         "tensor \"b\" starts at byte 4 of the data but the previous tensor ends at 8 (overlap)"},
        {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})", 12,
         "tensor \"b\" starts at byte 8 of the data but the data is not covered from 4 (gap)"},
        {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 5, "cover 4 bytes of data but the file holds 5 (trailing bytes)"},
        {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 3, "(truncated file)"},
        // mis-typed dtype
        {R"({"a":{"dtype":32,"shape":[1],"data_offsets":[0,4]}})", 4, "tensor \"a\": dtype is not a string"},
        {R"({"a":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}})", 4, "tensor \"a\": unknown dtype \"f32\""},
        // negative / non-integer shape
        {R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4, "tensor \"a\": shape entry -1 is not a non-negative integer"},
        {R"({"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", 4, "tensor \"a\": shape entry 1.5 is not"},
        {R"({"a":{"dtype":"F32","shape":[1e0],"data_offsets":[0,4]}})", 4, "tensor \"a\": shape entry 1e0 is not"},
        {R"({"a":{"dtype":"F32","shape":["1"],"data_offsets":[0,4]}})", 4, "tensor \"a\": shape holds a non-number"},
        {R"({"a":{"dtype":"F32","shape":1,"data_offsets":[0,4]}})", 4, "tensor \"a\": shape is not an array"},
        {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,-4]}})", 4, "tensor \"a\": data_offsets are not non-negative"},
        // duplicate names
        {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8,
         "duplicate key \"a\""},
        // wrong numel × size
        {R"({"a":{"dtype":"F16","shape":[3],"data_offsets":[0,4]}})", 4, "tensor \"a\": data_offsets span 4 bytes but the shape and F16 need 6"},
        {R"({"a":{"dtype":"F64","shape":[2,0,5],"data_offsets":[0,8]}})", 8, "F64 need 0"},
        {R"({"a":{"dtype":"F64","shape":[4294967296,536870912],"data_offsets":[0,8]}})", 8, "tensor \"a\": the number of bytes of its shape overflows"},
    };
    for (const auto& c : cases) {
        INFO(c.header);
        CHECK_THROWS_WITH(parse_safetensors(make_file(c.header, c.data)), Contains(c.message));
    }
    // oversized header length: over the limit, or past the end of the file
    REQUIRE_THROWS_WITH(parse_safetensors(make_file("{}", 0, 100'000'001)),
                        Contains("header length 100000001 exceeds the limit of 100000000 bytes"));
    REQUIRE_THROWS_WITH(parse_safetensors(make_file("{}  ", 0, 5)), Contains("header length 5 runs past the end of the file (12 bytes)"));
}

// ---- sharded checkpoints ---------------------------------------------------------------------

namespace {
// Writes one shard holding the named F32 tensors, tensor i being [i, i + 1].
void write_shard(const std::string& path, const std::vector<std::string>& names) {
    diffuse::io::safetensors_writer w;
    for (std::size_t i = 0; i < names.size(); ++i) {
        const std::vector<float> v{float(i), float(i) + 1};
        w.add(names[i], {2}, std::span<const float>(v));
    }
    w.write(path);
}
// {"metadata": {"total_size": 16}, "weight_map": {tensor: shard}}
std::string index_json(const std::vector<std::pair<std::string, std::string>>& map) {
    std::string s = R"({"metadata": {"total_size": 16}, "weight_map": {)";
    for (std::size_t i = 0; i < map.size(); ++i)
        s += (i ? ", " : "") + diffuse::io::json_quote(map[i].first) + ": " + diffuse::io::json_quote(map[i].second);
    return s + "}}";
}
const std::string shard1 = "diffusion_pytorch_model-00001-of-00002.safetensors";
const std::string shard2 = "diffusion_pytorch_model-00002-of-00002.safetensors";
const std::string index_name = "diffusion_pytorch_model.safetensors.index.json";
}  // namespace

TEST_CASE("safetensors: a valid two-shard checkpoint", "[io][safetensors][shards]") {
    temp_folder dir("shards");
    write_shard(dir / shard1, {"conv_in.weight", "conv_in.bias"});
    write_shard(dir / shard2, {"up.0.weight"});
    write_text(dir / index_name, index_json({{"conv_in.weight", shard1}, {"up.0.weight", shard2}, {"conv_in.bias", shard1}}));

    REQUIRE(diffuse::io::find_weights_file(dir.path) == dir / index_name);
    const auto c = diffuse::io::open_safetensors(diffuse::io::find_weights_file(dir.path));
    CHECK(c.size() == 3);
    CHECK(c.files().size() == 2);
    CHECK(c.names() == std::vector<std::string>{"conv_in.bias", "conv_in.weight", "up.0.weight"});
    CHECK(c.file_name("up.0.weight") == shard2);
    CHECK(c.file_name("conv_in.bias") == shard1);
    CHECK(c.shape("conv_in.bias") == std::vector<std::uint64_t>{2});
    CHECK(c.dtype("up.0.weight") == "F32");
    REQUIRE(c.find("conv_in.bias") != nullptr);
    CHECK(c.find("conv_in.bias")->name == "conv_in.bias");
    CHECK(c.find("nope") == nullptr);
    CHECK_FALSE(c.contains("nope"));
    std::vector<float> out(2);
    c.read_into("conv_in.bias", std::span<float>(out));
    CHECK(out == std::vector<float>{1, 2});
    std::vector<double> outd(2);
    c.read_into("up.0.weight", std::span<double>(outd));
    CHECK(outd == std::vector<double>{0, 1});
    REQUIRE_THROWS_WITH(c.read_into("nope", std::span<float>(out)), Contains("no tensor named \"nope\""));
    REQUIRE_THROWS_WITH(c.shape("nope"), Contains("no tensor named \"nope\""));

    // a single file opens the same way
    write_shard(dir / "diffusion_pytorch_model.safetensors", {"a", "b"});
    REQUIRE(diffuse::io::find_weights_file(dir.path) == dir / "diffusion_pytorch_model.safetensors");
    const auto single = diffuse::io::open_safetensors(diffuse::io::find_weights_file(dir.path));
    CHECK(single.names() == std::vector<std::string>{"a", "b"});
    CHECK(single.file_name("b") == "diffusion_pytorch_model.safetensors");
    single.read_into("b", std::span<float>(out));
    CHECK(out == std::vector<float>{1, 2});
}

TEST_CASE("safetensors: an index that disagrees with its shards is rejected", "[io][safetensors][shards][errors]") {
    temp_folder dir("bad_shards");
    write_shard(dir / shard1, {"a", "b"});
    write_shard(dir / shard2, {"c", "b"});
    const auto open = [&](const std::string& json) {
        write_text(dir / index_name, json);
        return diffuse::io::open_safetensors(dir / index_name);
    };
    // a shard file that does not exist
    REQUIRE_THROWS_WITH(open(index_json({{"a", "missing.safetensors"}})),
                        Contains("shard missing.safetensors (of tensor \"a\") cannot be used") && Contains("cannot open"));
    // "b" is in both shards
    REQUIRE_THROWS_WITH(open(index_json({{"a", shard1}, {"b", shard1}, {"c", shard2}})),
                        Contains("tensor \"b\" is in two shards, " + shard1 + " and " + shard2));
    write_shard(dir / shard2, {"c"});
    // shard 1 holds "b", which the map does not list
    REQUIRE_THROWS_WITH(open(index_json({{"a", shard1}, {"c", shard2}})),
                        Contains("shard " + shard1 + " holds tensor \"b\", which the weight_map does not list"));
    // the map lists "d" in shard 2, which does not hold it
    REQUIRE_THROWS_WITH(open(index_json({{"a", shard1}, {"b", shard1}, {"c", shard2}, {"d", shard2}})),
                        Contains("tensor \"d\" is missing from its shard " + shard2));
    // the map puts "b" in shard 2, but shard 1 holds it
    REQUIRE_THROWS_WITH(open(index_json({{"a", shard1}, {"b", shard2}, {"c", shard2}})),
                        Contains("holds tensor \"b\", which the weight_map puts in " + shard2));
    CHECK_NOTHROW(open(index_json({{"a", shard1}, {"b", shard1}, {"c", shard2}})));
    // shard names must be plain file names in the index's folder
    for (const std::string name : {"../x.safetensors", "sub/x.safetensors", "/etc/passwd", "", "..", "c:x", "a\\b"}) {
        INFO(name);
        REQUIRE_THROWS_WITH(open(index_json({{"a", name}})), Contains("tensor \"a\" is in shard") && Contains("not a plain file name"));
    }
    // the weight_map itself
    REQUIRE_THROWS_WITH(open(R"({"metadata": {}, "weight_map": ["a"]})"), Contains("\"weight_map\" is not an object"));
    REQUIRE_THROWS_WITH(open(R"({"metadata": {}})"), Contains("has no \"weight_map\""));
    REQUIRE_THROWS_WITH(open(R"({"weight_map": {}})"), Contains("lists no tensors"));
    REQUIRE_THROWS_WITH(open(R"({"weight_map": {"a": 1}})"), Contains("the shard of tensor \"a\" is not a string"));
    REQUIRE_THROWS_WITH(open(R"({"weight_map": {"a": "x", "a": "y"}})"), Contains("duplicate key"));
    REQUIRE_THROWS_WITH(open(R"({"metadata": 3, "weight_map": {"a": "x"}})"), Contains("\"metadata\" is not an object"));
    REQUIRE_THROWS_WITH(open(R"([])"), Contains("not a JSON object"));
    REQUIRE_THROWS_WITH(open(R"({"weight_map": {"a": )"), Contains("invalid JSON"));
    REQUIRE_THROWS_WITH(open(""), Contains("is empty"));
    REQUIRE_THROWS_WITH(diffuse::io::open_safetensors(dir / "none.safetensors.index.json"), Contains("cannot open"));
}

TEST_CASE("safetensors: find_weights_file names what it looked for", "[io][safetensors][shards][errors]") {
    temp_folder dir("find");
    REQUIRE_THROWS_WITH(diffuse::io::find_weights_file(dir.path),
                        Contains(dir.path.string()) && Contains("neither diffusion_pytorch_model.safetensors nor "
                                                                "diffusion_pytorch_model.safetensors.index.json"));
    write_text(dir / "diffusion_pytorch_model.bin", "pickle");
    REQUIRE_THROWS_WITH(diffuse::io::find_weights_file(dir.path),
                        Contains("neither") && Contains("diffusion_pytorch_model.bin, a PyTorch pickle, which is not read"));
    write_shard(dir / "model.safetensors", {"w"});
    CHECK(diffuse::io::find_weights_file(dir.path, "model") == dir / "model.safetensors");
    REQUIRE_THROWS_WITH(diffuse::io::find_weights_file(dir.path / "absent"), Contains("absent"));
}

// ---- robustness ------------------------------------------------------------------------------

TEST_CASE("safetensors: flipped bytes and truncations parse within bounds or throw", "[io][safetensors]") {
    diffuse::io::safetensors_writer w;
    const std::vector<float> a{1, 2, 3, 4};
    w.add("weight", {2, 2}, std::span<const float>(a));
    w.add("bias", {2}, std::span<const float>(a.data(), 2));
    w.set_metadata("format", "pt");
    auto full = w.to_bytes();
    // an F16 tensor too, so conversion runs on corrupted half data
    const auto half = half_file("F16", {0x3c00, 0x7c00, 0x0001});
    rc::prop("valid file with every entry inside the buffer, or diffuse::error",
             [&](bool use_half, std::vector<std::pair<std::uint16_t, std::uint8_t>> edits, std::uint16_t cut) {
                 auto f = use_half ? half : full;
                 for (auto [pos, val] : edits) f[pos % f.size()] = val;
                 if (*rc::gen::arbitrary<bool>()) f.resize(cut % (f.size() + 1));
                 try {
                     const auto st = parse_safetensors(f);
                     for (const auto& e : st.entries()) {
                         RC_ASSERT(e.begin <= e.end);
                         RC_ASSERT(e.end <= f.size());
                         const auto raw = st.bytes(e);
                         RC_ASSERT(raw.size() == e.end - e.begin);
                         std::vector<double> out(std::size_t(e.numel()));
                         try {
                             st.read_into(e, std::span<double>(out));
                         } catch (const diffuse::error&) {
                             RC_ASSERT(e.dtype != "F16");  // only a non-float dtype may refuse
                             RC_ASSERT(e.dtype != "F32");
                         }
                     }
                 } catch (const diffuse::error&) {
                 }
             });
}

TEST_CASE("safetensors: an F64 value beyond float's range read as float is an error, not undefined behaviour",
          "[io][safetensors][errors]") {
    const double max_float = std::numeric_limits<float>::max(), half_unit = std::ldexp(1.0, 103);
    const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
    auto f64_file = [](const std::vector<double>& v) {
        diffuse::io::safetensors_writer w;
        w.add("t", {v.size()}, std::span<const double>(v));
        return parse_safetensors(w.to_bytes());
    };
    const auto big = f64_file({1.0, 1e300});
    REQUIRE_THROWS_WITH(big.as<float>("t"), Contains("tensor \"t\": element 1") && Contains("beyond the range of float"));
    std::vector<float> out(2, 7.0f);
    REQUIRE_THROWS_AS(big.read_into(big.at("t"), std::span<float>(out)), diffuse::error);
    CHECK(out == std::vector<float>{7.0f, 7.0f});  // refused before anything is written
    CHECK(big.as<double>("t")[1] == 1e300);          // as double it is exact
    REQUIRE_THROWS_AS(f64_file({-(max_float + half_unit)}).as<float>("t"), diffuse::error);
    const auto edge = f64_file({max_float + half_unit / 2, -max_float, nan, -inf, 1e-300}).as<float>("t");
    CHECK(edge[0] == std::numeric_limits<float>::max());
    CHECK(edge[1] == -std::numeric_limits<float>::max());
    CHECK(std::isnan(edge[2]));
    CHECK(edge[3] == -std::numeric_limits<float>::infinity());
    CHECK(edge[4] == 0.0f);
}

TEST_CASE("safetensors_writer: an overflowing shape is refused", "[io][safetensors][errors]") {
    diffuse::io::safetensors_writer w;
    const std::vector<float> v(4);
    // 2^62 · 4 wraps to 0 in 64 bits, and 2^62 · 4 · 4 to 0 as well: neither may pass as 4 or 0 values
    CHECK_THROWS_WITH(w.add("a", {std::uint64_t{1} << 62, 4}, std::span<const float>()), Contains("overflows 64 bits"));
    CHECK_THROWS_AS(w.add("b", {std::uint64_t{1} << 62, 4, 4}, std::span<const float>(v)), diffuse::error);
    CHECK_NOTHROW(w.add("c", {std::uint64_t{1} << 62, 0}, std::span<const float>()));
}
