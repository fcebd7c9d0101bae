// io/file.hpp's file_writer and io/npy.hpp's npy_writer: a file streamed in pieces appears complete at
// publish() or not at all (no temporary left behind), and a streamed .npy reads back as written.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "diffuse/io/file.hpp"
#include "diffuse/io/npy.hpp"

namespace fs = std::filesystem;
using Catch::Matchers::Contains;

namespace {
fs::path fresh_folder(const char* name) {
    const auto p = fs::temp_directory_path() / (std::string(name) + "_" + std::to_string(std::random_device{}()));
    fs::create_directories(p);
    return p;
}
std::size_t entries(const fs::path& folder) {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(folder)) ++n;
    return n;
}
}  // namespace

TEST_CASE("npy_writer: rows appended one by one read back as the array, over drawn shapes", "[io][npy_writer]") {
    const auto dir = fresh_folder("diffuse_npy_writer");
    std::mt19937_64 rng(7);
    for (int c = 0; c < 40; ++c) {
        std::vector<std::size_t> shape{std::size_t(rng() % 6)};  // rows, possibly 0
        for (std::size_t k = rng() % 3 + 1; k > 0; --k) shape.push_back(rng() % 4 + 1);
        std::size_t per_row = 1;
        for (std::size_t i = 1; i < shape.size(); ++i) per_row *= shape[i];
        std::vector<double> all;
        const auto path = (dir / "a.npy").string();
        {
            diffuse::io::npy_writer<double> w(path, shape);
            for (std::size_t r = 0; r < shape[0]; ++r) {
                std::vector<double> row(per_row);
                for (auto& v : row) v = std::normal_distribution<double>()(rng);
                w.append(row);
                all.insert(all.end(), row.begin(), row.end());
            }
            CHECK(entries(dir) == (c == 0 ? 1u : 2u));  // the temporary (and the previous a.npy)
            w.publish();
        }
        const auto a = diffuse::io::read_npy(path);
        CHECK(a.shape == shape);
        CHECK(a.as<double>() == all);
        CHECK(entries(dir) == 1u);
    }
    fs::remove_all(dir);
}

TEST_CASE("npy_writer: a wrong count or a writer dropped early leaves the target as it was", "[io][npy_writer]") {
    const auto dir = fresh_folder("diffuse_npy_writer_fail");
    const auto path = (dir / "t.npy").string();
    {
        diffuse::io::npy_writer<float> w(path, {2, 3});
        const std::vector<float> row(3, 1.0f);
        w.append(row);
        CHECK_THROWS_WITH(w.publish(), Contains("3 values written, the shape holds 6"));
    }
    CHECK(entries(dir) == 0u);  // no target, no temporary
    {
        diffuse::io::npy_writer<float> w(path, {1, 3});
        const std::vector<float> four(4, 1.0f);
        CHECK_THROWS_WITH(w.append(four), Contains("more values than the shape holds"));
    }
    CHECK(entries(dir) == 0u);
    diffuse::io::write_npy<float>(path, std::vector<float>{1, 2}, {2});
    {
        diffuse::io::npy_writer<float> w(path, {1});
        w.append(std::vector<float>{9});
        w.finish();  // complete and synced, but not yet in place: the old file is still there
        CHECK(diffuse::io::read_npy(path).as<float>() == std::vector<float>{1, 2});
    }  // dropped without publish()
    CHECK(diffuse::io::read_npy(path).as<float>() == std::vector<float>{1, 2});
    CHECK(entries(dir) == 1u);
    fs::remove_all(dir);
}

TEST_CASE("file_writer: finish reports a full device, publish renames only then", "[io][file_writer]") {
    const auto dir = fresh_folder("diffuse_file_writer");
    const auto path = (dir / "out.bin").string();
    diffuse::io::file_writer a(path);
    const std::vector<unsigned char> bytes{1, 2, 3};
    a.write(bytes);
    a.finish();
    CHECK_FALSE(fs::exists(path));
    a.publish();
    CHECK(fs::file_size(path) == 3u);
    CHECK_THROWS_WITH(a.write(bytes), Contains("written after it was finished"));
    if (fs::exists("/dev/full")) {
        diffuse::io::file_writer full("/dev/full");
        const std::vector<unsigned char> big(1 << 16, 0);
        CHECK_THROWS_WITH((full.write(big), full.finish()), Contains("/dev/full"));
    }
    fs::remove_all(dir);
}
