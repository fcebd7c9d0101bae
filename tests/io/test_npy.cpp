#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <csignal>
#include <sys/stat.h>
#endif

#include "diffuse/io/npy.hpp"

TEST_CASE("npy round trip keeps shape, dtype and bits") {
    const std::vector<float> v = {1.5f, -2.25f, 3.0f, 1e-30f, 0.0f, -0.0f};
    const std::string path = "test_npy_roundtrip.npy";
    diffuse::io::write_npy<float>(path, v, {2, 3});
    const auto a = diffuse::io::read_npy(path);
    CHECK(a.dtype == "<f4");
    CHECK(a.shape == std::vector<std::size_t>{2, 3});
    CHECK(a.as<float>() == v);
    CHECK(a.as<double>()[1] == -2.25);
    std::remove(path.c_str());
}

TEST_CASE("npy rejects truncated and malformed files") {
    const std::string path = "test_npy_bad.npy";
    diffuse::io::write_npy<double>(path, std::vector<double>{1, 2, 3}, {3});
    {
        std::ifstream in(path, std::ios::binary);
        std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out.write(s.data(), std::streamsize(s.size() - 4));
    }
    CHECK_THROWS_WITH(diffuse::io::read_npy(path), Catch::Contains("payload"));
    {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out << "not numpy";
    }
    CHECK_THROWS_WITH(diffuse::io::read_npy(path), Catch::Contains("magic"));
    CHECK_THROWS_AS(diffuse::io::read_npy("does/not/exist.npy"), diffuse::error);
    std::remove(path.c_str());
}

TEST_CASE("npy reads uint8 arrays (numpy's '|u1', e.g. images)") {
    const std::string path = "test_npy_u8.npy";
    {
        // numpy.save(path, numpy.array([[0, 7, 255]], dtype=numpy.uint8)), byte for byte
        std::string header = "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 3), }";
        while ((10 + header.size() + 1) % 64 != 0) header += ' ';
        header += '\n';
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out.write("\x93NUMPY\x01\x00", 8);
        const char len[2] = {char(header.size() & 0xFF), char(header.size() >> 8)};
        out.write(len, 2);
        out << header;
        const unsigned char data[3] = {0, 7, 255};
        out.write(reinterpret_cast<const char*>(data), 3);
    }
    const auto a = diffuse::io::read_npy(path);
    CHECK(a.dtype == "|u1");
    CHECK(a.shape == std::vector<std::size_t>{1, 3});
    CHECK(a.as<float>() == std::vector<float>{0.0f, 7.0f, 255.0f});
    std::remove(path.c_str());
}

namespace {
// A version 1.0 .npy file: the magic, `header` as given, then `data_bytes` zero bytes.
std::vector<unsigned char> npy_file(const std::string& header, std::size_t data_bytes, unsigned char major = 1,
                                    unsigned char minor = 0) {
    std::vector<unsigned char> f = {0x93, 'N', 'U', 'M', 'P', 'Y', major, minor};
    const std::size_t length_bytes = major == 1 ? 2 : 4;
    for (std::size_t i = 0; i < length_bytes; ++i) f.push_back(static_cast<unsigned char>(header.size() >> (8 * i)));
    f.insert(f.end(), header.begin(), header.end());
    f.resize(f.size() + data_bytes, 0);
    return f;
}
void put_bytes(const std::string& path, const std::vector<unsigned char>& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}
// Reads `bytes` both from a file (read_npy) and from memory (parse_npy); both must agree.
diffuse::io::npy_array read_both(const std::vector<unsigned char>& bytes, const diffuse::io::npy_limits& limits = {}) {
    const std::string path = "test_npy_grammar.npy";
    put_bytes(path, bytes);
    std::string file_error, memory_error;
    diffuse::io::npy_array from_file, from_memory;
    try {
        from_file = diffuse::io::read_npy(path, limits);
    } catch (const diffuse::error& e) {
        file_error = e.what();
    }
    std::remove(path.c_str());
    try {
        from_memory = diffuse::io::parse_npy(bytes, limits);
    } catch (const diffuse::error& e) {
        memory_error = e.what();
    }
    INFO("read_npy: " << file_error << "\nparse_npy: " << memory_error);
    REQUIRE(file_error.empty() == memory_error.empty());
    if (!file_error.empty()) throw diffuse::error(file_error);
    CHECK(from_file.shape == from_memory.shape);
    CHECK(from_file.dtype == from_memory.dtype);
    CHECK(from_file.bytes == from_memory.bytes);
    return from_file;
}
std::string dict(const std::string& shape, const std::string& descr = "'<f8'", const std::string& order = "False") {
    return "{'descr': " + descr + ", 'fortran_order': " + order + ", 'shape': " + shape + ", }";
}
}  // namespace

TEST_CASE("npy header: the shape is a tuple of non-negative integers", "[io][npy][errors]") {
    using Catch::Contains;
    CHECK(read_both(npy_file(dict("(2, 3)"), 48)).shape == std::vector<std::size_t>{2, 3});
    CHECK(read_both(npy_file(dict("(6,)"), 48)).shape == std::vector<std::size_t>{6});
    CHECK(read_both(npy_file(dict("(2,3,)"), 48)).shape == std::vector<std::size_t>{2, 3});
    CHECK(read_both(npy_file(dict("( 2 , 3 )"), 48)).shape == std::vector<std::size_t>{2, 3});
    CHECK(read_both(npy_file(dict("()"), 8)).shape.empty());  // a scalar: one value
    CHECK(read_both(npy_file(dict("(0, 5)"), 0)).size() == 0);
    CHECK_THROWS_WITH(read_both(npy_file(dict("(2, -3)"), 48)), Contains("negative"));
    CHECK_THROWS_WITH(read_both(npy_file(dict("(-6,)"), 48)), Contains("negative"));
    CHECK_THROWS_WITH(read_both(npy_file(dict("(2.3,)"), 16)), Contains("malformed header"));
    CHECK_THROWS_WITH(read_both(npy_file(dict("(6 garbage)"), 48)), Contains("malformed header"));
    CHECK_THROWS_WITH(read_both(npy_file(dict("(6)"), 48)), Contains("trailing comma"));
    CHECK_THROWS_WITH(read_both(npy_file(dict("(2,,3)"), 48)), Contains("malformed header"));
    CHECK_THROWS_WITH(read_both(npy_file(dict("(,)"), 8)), Contains("malformed header"));
    CHECK_THROWS_WITH(read_both(npy_file(dict("[2, 3]"), 48)), Contains("expected '('"));
    CHECK_THROWS_WITH(read_both(npy_file(dict("(02, 3)"), 48)), Contains("leading zero"));
    CHECK_THROWS_WITH(read_both(npy_file(dict("(0x2, 3)"), 48)), Contains("malformed header"));
    CHECK_THROWS_WITH(read_both(npy_file(dict("(2, 3"), 48)), Contains("malformed header"));
    // overflow: of one extent, and of the element count times the dtype size (2^32 · 2^32 · 8 bytes)
    CHECK_THROWS_WITH(read_both(npy_file(dict("(99999999999999999999999,)"), 8)), Contains("overflows"));
    CHECK_THROWS_WITH(read_both(npy_file(dict("(4294967296, 4294967296)"), 8)), Contains("overflows 64 bits"));
    CHECK_THROWS_WITH(read_both(npy_file(dict("(2305843009213693952,)"), 8)), Contains("overflows 64 bits"));
    // a zero extent makes the array empty whatever the others are
    CHECK(read_both(npy_file(dict("(0, 4294967296, 4294967296)"), 0)).shape.size() == 3);
}

TEST_CASE("npy header: exactly the three keys of a Python literal dict", "[io][npy][errors]") {
    using Catch::Contains;
    CHECK(read_both(npy_file("{\"shape\": (1,), \"fortran_order\": False, \"descr\": \"<i4\"}", 4)).dtype == "<i4");
    CHECK(read_both(npy_file(dict("(1,)") + std::string(40, ' ') + "\n", 8)).size() == 1);  // numpy's padding
    CHECK(read_both(npy_file(dict("(1,)"), 8, 2)).size() == 1);   // version 2.0: 4-byte header length
    CHECK(read_both(npy_file(dict("(1,)"), 8, 3)).size() == 1);   // version 3.0
    CHECK_THROWS_WITH(read_both(npy_file(dict("(1,)"), 8, 1, 1)), Contains("unsupported format version 1.1"));
    CHECK_THROWS_WITH(read_both(npy_file(dict("(1,)"), 8, 4)), Contains("unsupported format version 4.0"));
    CHECK_THROWS_WITH(read_both(npy_file(dict("(1,)", "'<f8'", "True"), 8)), Contains("Fortran order"));
    CHECK_THROWS_WITH(read_both(npy_file(dict("(1,)", "'<f8'", "0"), 8)), Contains("fortran_order must be"));
    CHECK_THROWS_WITH(read_both(npy_file(dict("(1,)", "'<f8'", "Falsey"), 8)), Contains("fortran_order must be"));
    CHECK_THROWS_WITH(read_both(npy_file(dict("(1,)", "'>f8'"), 8)), Contains("unsupported dtype '>f8'"));
    CHECK_THROWS_WITH(read_both(npy_file(dict("(1,)", "[('a', '<f8')]"), 8)), Contains("quoted string"));
    CHECK_THROWS_WITH(read_both(npy_file("{'descr': '<f8', 'fortran_order': False}", 8)), Contains("expected ','"));
    CHECK_THROWS_WITH(read_both(npy_file("{'descr': '<f8', 'descr': '<f8', 'shape': (1,)}", 8)), Contains("repeated key 'descr'"));
    CHECK_THROWS_WITH(read_both(npy_file("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), 'x': 1}", 8)),
                      Contains("expected '}'"));
    CHECK_THROWS_WITH(read_both(npy_file("{'descr': '<f8', 'order': False, 'shape': (1,)}", 8)), Contains("unexpected key 'order'"));
    CHECK_THROWS_WITH(read_both(npy_file("{'descr': '<f8' 'fortran_order': False, 'shape': (1,)}", 8)), Contains("expected ','"));
    CHECK_THROWS_WITH(read_both(npy_file(dict("(1,)") + " trailing", 8)), Contains("after the header dict"));
    CHECK_THROWS_WITH(read_both(npy_file("'descr': '<f8', 'fortran_order': False, 'shape': (1,)", 8)), Contains("expected '{'"));
    CHECK_THROWS_WITH(read_both(npy_file(dict("(1,)", "'<f\\x38'"), 8)), Contains("unsupported character"));
    CHECK_THROWS_AS(read_both(npy_file(dict("(1,)", "'<f8"), 8)), diffuse::error);
    CHECK_THROWS_WITH(read_both(npy_file("{'descr': '<f8", 8)), Contains("unterminated string"));
    // the data must be exactly what the shape needs
    CHECK_THROWS_WITH(read_both(npy_file(dict("(2,)"), 15)), Contains("payload has 15 bytes, shape needs 16"));
    CHECK_THROWS_WITH(read_both(npy_file(dict("(2,)"), 17)), Contains("payload has 17 bytes, shape needs 16"));
    // limits: header and data size
    diffuse::io::npy_limits small;
    small.max_header_bytes = 20;
    CHECK_THROWS_WITH(read_both(npy_file(dict("(1,)"), 8), small), Contains("npy_limits::max_header_bytes"));
    small = {};
    small.max_data_bytes = 1000;
    CHECK_THROWS_WITH(read_both(npy_file(dict("(126,)"), 1008), small), Contains("npy_limits::max_data_bytes"));
    CHECK(read_both(npy_file(dict("(125,)"), 1000), small).size() == 125);
    // truncated prefixes
    for (std::size_t n : {0, 3, 6, 7, 9}) {
        auto f = npy_file(dict("(1,)"), 8);
        f.resize(n);
        INFO(n);
        CHECK_THROWS_AS(read_both(f), diffuse::error);
    }
}

TEST_CASE("read_npy is bounded on devices, FIFOs and huge files", "[io][npy][errors]") {
    using Catch::Contains;
    if (std::filesystem::exists("/dev/zero"))  // read forever before: now 8 bytes, then refused
        CHECK_THROWS_WITH(diffuse::io::read_npy("/dev/zero"), Contains("bad magic"));
    // a sparse 1 GiB file whose header declares 16 bytes: refused from its size, before its data is read
    const std::string huge = "test_npy_huge.npy";
    put_bytes(huge, npy_file(dict("(2,)"), 16));
    std::filesystem::resize_file(huge, std::uintmax_t{1} << 30);
    CHECK_THROWS_WITH(diffuse::io::read_npy(huge), Contains("shape needs 16"));
    std::remove(huge.c_str());
    CHECK_THROWS_WITH(diffuse::io::read_npy("."), Contains("is a directory"));
#if defined(__unix__) || defined(__APPLE__)
    // a FIFO: its header declares 16 bytes of data; the bytes after them are refused, not read on
    const std::string fifo = "test_npy_fifo";
    std::remove(fifo.c_str());
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    const auto old_sigpipe = std::signal(SIGPIPE, SIG_IGN);  // the reader may close before the writer is done
    auto bytes = npy_file(dict("(2,)"), 16 + 1000);
    std::thread writer([&] { put_bytes(fifo, bytes); });  // fits in the pipe buffer: needs no reader to finish
    CHECK_THROWS_WITH(diffuse::io::read_npy(fifo), Contains("payload has more than 16 bytes"));
    writer.join();
    bytes.resize(bytes.size() - 1000);
    std::thread exact([&] { put_bytes(fifo, bytes); });
    CHECK(diffuse::io::read_npy(fifo).as<double>() == std::vector<double>{0.0, 0.0});
    exact.join();
    std::signal(SIGPIPE, old_sigpipe);
    std::remove(fifo.c_str());
#endif
}

TEST_CASE("npy_array::as refuses values the target type cannot hold", "[io][npy][errors]") {
    using Catch::Contains;
    auto array_of = [](const std::string& dtype, const auto& values) {
        diffuse::io::npy_array a;
        a.dtype = dtype;
        a.shape = {values.size()};
        a.bytes.resize(values.size() * sizeof(values[0]));
        std::memcpy(a.bytes.data(), values.data(), a.bytes.size());
        return a;
    };
    const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
    CHECK_THROWS_WITH(array_of("<f8", std::vector<double>{1.0, nan}).as<std::int32_t>(),
                      Contains("npy_array::as") && Contains("element 1 (nan, <f8)"));
    CHECK_THROWS_AS(array_of("<f8", std::vector<double>{inf}).as<std::int64_t>(), diffuse::error);
    CHECK_THROWS_AS(array_of("<f8", std::vector<double>{2147483648.0}).as<std::int32_t>(), diffuse::error);
    CHECK(array_of("<f8", std::vector<double>{2147483647.0, -2147483648.0}).as<std::int32_t>() ==
          std::vector<std::int32_t>{2147483647, std::numeric_limits<std::int32_t>::min()});
    CHECK_THROWS_AS(array_of("<f8", std::vector<double>{-2147483649.0}).as<std::int32_t>(), diffuse::error);
    CHECK_THROWS_AS(array_of("<f8", std::vector<double>{9223372036854775808.0}).as<std::int64_t>(), diffuse::error);
    CHECK_THROWS_AS(array_of("<f8", std::vector<double>{18446744073709551616.0}).as<std::uint64_t>(), diffuse::error);
    CHECK_THROWS_AS(array_of("<f8", std::vector<double>{-1.0}).as<std::uint32_t>(), diffuse::error);
    CHECK_THROWS_WITH(array_of("<f8", std::vector<double>{2.5}).as<std::int64_t>(), Contains("element 0 (2.5, <f8)"));
    CHECK(array_of("<f8", std::vector<double>{-0.0, 3.0}).as<std::uint8_t>() == std::vector<std::uint8_t>{0, 3});
    CHECK_THROWS_AS(array_of("<f4", std::vector<float>{256.0f}).as<std::uint8_t>(), diffuse::error);
    // integers into narrower integers
    CHECK_THROWS_AS(array_of("<i8", std::vector<std::int64_t>{-1}).as<std::uint64_t>(), diffuse::error);
    CHECK_THROWS_AS(array_of("<i8", std::vector<std::int64_t>{std::int64_t{1} << 40}).as<std::int32_t>(), diffuse::error);
    CHECK_THROWS_AS(array_of("<u8", std::vector<std::uint64_t>{~std::uint64_t{0}}).as<std::int64_t>(), diffuse::error);
    CHECK(array_of("<u4", std::vector<std::uint32_t>{7}).as<std::int32_t>() == std::vector<std::int32_t>{7});
    // float64 into float: beyond FLT_MAX + half its last unit would round to infinity
    const double max_float = std::numeric_limits<float>::max(), half_unit = std::ldexp(1.0, 103);
    CHECK_THROWS_AS(array_of("<f8", std::vector<double>{1e300}).as<float>(), diffuse::error);
    CHECK_THROWS_AS(array_of("<f8", std::vector<double>{-(max_float + half_unit)}).as<float>(), diffuse::error);
    CHECK(array_of("<f8", std::vector<double>{max_float + half_unit / 2}).as<float>()[0] == std::numeric_limits<float>::max());
    const auto special = array_of("<f8", std::vector<double>{nan, -inf, 1e-300}).as<float>();
    CHECK(std::isnan(special[0]));
    CHECK(special[1] == -std::numeric_limits<float>::infinity());
    CHECK(special[2] == 0.0f);
    CHECK(array_of("<f8", std::vector<double>{nan}).as<double>().size() == 1);
    // a hand-made array whose bytes do not match its shape, or of an unknown dtype
    auto bad = array_of("<f8", std::vector<double>{1.0, 2.0});
    bad.shape = {3};
    CHECK_THROWS_WITH(bad.as<double>(), Contains("does not match its shape"));
    bad.dtype = "<f2";
    CHECK_THROWS_WITH(bad.as<double>(), Contains("unsupported dtype '<f2'"));
}

TEST_CASE("write_npy refuses a shape that does not hold the data", "[io][npy][errors]") {
    const std::vector<float> v(4);
    CHECK_THROWS_WITH(diffuse::io::write_npy<float>("test_npy_never.npy", v, {3}), Catch::Contains("does not hold"));
    // 2^62 · 4 wraps to 0 elements in 64 bits: refused, not written as a 4-value file
    CHECK_THROWS_AS(diffuse::io::write_npy<float>("test_npy_never.npy", v, {std::size_t{1} << 62, 4}), diffuse::error);
    CHECK_FALSE(std::filesystem::exists("test_npy_never.npy"));
    diffuse::io::write_npy<float>("test_npy_scalar.npy", std::vector<float>{2.5f}, {});
    const auto s = diffuse::io::read_npy("test_npy_scalar.npy");
    CHECK(s.shape.empty());
    CHECK(s.as<float>() == std::vector<float>{2.5f});
    std::remove("test_npy_scalar.npy");
}
