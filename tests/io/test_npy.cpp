#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>
#include <vector>

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
