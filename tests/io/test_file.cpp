// io/file.hpp and the writers built on it (write_npy, safetensors_writer::write): an output file is complete
// or left as it was, every failure (a full disk, a missing folder) is a diffuse::error; reads are bounded.
#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "diffuse/io/file.hpp"
#include "diffuse/io/npy.hpp"
#include "diffuse/io/safetensors.hpp"

#if defined(__unix__) || defined(__APPLE__)
#include <csignal>
#include <sys/resource.h>
#define DIFFUSE_TEST_POSIX 1
#else
#define DIFFUSE_TEST_POSIX 0
#endif

namespace fs = std::filesystem;
using Catch::Matchers::Contains;

namespace {
std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
void put(const fs::path& p, const std::string& s) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << s;
}
// The names in `folder` other than `keep`: a writer must leave no temporary behind.
std::vector<std::string> others_in(const fs::path& folder, const std::string& keep) {
    std::vector<std::string> r;
    for (const auto& e : fs::directory_iterator(folder))
        if (e.path().filename() != keep) r.push_back(e.path().filename().string());
    return r;
}
// A fresh, empty folder under the working directory.
fs::path scratch(const std::string& name) {
    const fs::path p = fs::path("test_file_scratch") / name;
    fs::remove_all(p);
    fs::create_directories(p);
    return p;
}
std::span<const unsigned char> as_bytes(const std::string& s) {
    return {reinterpret_cast<const unsigned char*>(s.data()), s.size()};
}

#if DIFFUSE_TEST_POSIX
// While alive, a process may write files of at most `bytes` bytes: a larger write fails with EFBIG, as a
// full disk fails with ENOSPC (SIGXFSZ, which would end the process, is ignored meanwhile).
class file_size_limit {
public:
    explicit file_size_limit(rlim_t bytes) {
        ::getrlimit(RLIMIT_FSIZE, &old_);
        old_handler_ = std::signal(SIGXFSZ, SIG_IGN);
        rlimit lim = old_;
        lim.rlim_cur = bytes;
        ::setrlimit(RLIMIT_FSIZE, &lim);
    }
    file_size_limit(const file_size_limit&) = delete;
    file_size_limit& operator=(const file_size_limit&) = delete;
    ~file_size_limit() {
        ::setrlimit(RLIMIT_FSIZE, &old_);
        std::signal(SIGXFSZ, old_handler_);
    }

private:
    rlimit old_{};
    void (*old_handler_)(int) = nullptr;
};
#endif
}  // namespace

TEST_CASE("write_file replaces the file whole and leaves no temporary", "[io][file]") {
    const auto dir = scratch("replace");
    const auto path = (dir / "out.bin").string();
    diffuse::io::write_file(path, as_bytes("first"));
    CHECK(slurp(path) == "first");
    fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write);
    const std::string a = "second, ", b = "in two parts";
    const std::span<const unsigned char> parts[] = {as_bytes(a), as_bytes(b)};
    diffuse::io::write_file(path, parts);
    CHECK(slurp(path) == "second, in two parts");
    CHECK((fs::status(path).permissions() & fs::perms::all) == (fs::perms::owner_read | fs::perms::owner_write));
    CHECK(others_in(dir, "out.bin").empty());
    // a link to a file: the file is replaced, the link stays a link
    fs::create_symlink("out.bin", dir / "link.bin");
    diffuse::io::write_file((dir / "link.bin").string(), as_bytes("through the link"));
    CHECK(fs::is_symlink(dir / "link.bin"));
    CHECK(slurp(path) == "through the link");
    // an empty output is a file of 0 bytes
    diffuse::io::write_file(path, std::span<const unsigned char>());
    CHECK(fs::file_size(path) == 0);
}

TEST_CASE("write_file refuses what it cannot write, leaving nothing", "[io][file][errors]") {
    const auto dir = scratch("refuse");
    CHECK_THROWS_WITH(diffuse::io::write_file((dir / "no" / "such" / "folder.bin").string(), as_bytes("x"), "my_writer"),
                      Contains("my_writer") && Contains("cannot create a temporary file next to"));
    CHECK_THROWS_WITH(diffuse::io::write_file(dir.string(), as_bytes("x")), Contains("is a directory"));
    CHECK(others_in(dir, "").empty());
}

#if DIFFUSE_TEST_POSIX
TEST_CASE("writers report a full device (/dev/full) instead of losing the output", "[io][file][errors]") {
    if (!fs::exists("/dev/full")) {
        WARN("no /dev/full: skipped");
        return;
    }
    // /dev/full cannot be renamed onto: it is written directly, and its ENOSPC at the flush is an error.
    CHECK_THROWS_WITH(diffuse::io::write_file("/dev/full", as_bytes("small")), Contains("/dev/full"));
    const std::vector<float> v = {1, 2, 3};
    CHECK_THROWS_WITH(diffuse::io::write_npy<float>("/dev/full", v, {3}), Contains("write_npy") && Contains("/dev/full"));
    diffuse::io::safetensors_writer w;
    w.add("w", {3}, std::span<const float>(v));
    CHECK_THROWS_WITH(w.write("/dev/full"), Contains("safetensors_writer::write") && Contains("/dev/full"));
    // a device that takes everything is written like a file
    CHECK_NOTHROW(diffuse::io::write_npy<float>("/dev/null", v, {3}));
}

TEST_CASE("a write that fails midway (file too large) keeps the previous file and removes the temporary",
          "[io][file][errors]") {
    const auto dir = scratch("midway");
    const auto npy = (dir / "a.npy").string(), st = (dir / "a.safetensors").string();
    put(npy, "previous npy");
    put(st, "previous safetensors");
    const std::vector<double> big(100000, 0.5);  // 800 kB, above the 64 kB the limit allows
    diffuse::io::safetensors_writer w;
    w.add("big", {big.size()}, std::span<const double>(big));
    {
        const file_size_limit limit(64 * 1024);
        CHECK_THROWS_WITH(diffuse::io::write_npy<double>(npy, big, {big.size()}), Contains("write_npy") && Contains(npy));
        CHECK_THROWS_WITH(w.write(st), Contains("safetensors_writer::write") && Contains(st));
    }
    CHECK(slurp(npy) == "previous npy");
    CHECK(slurp(st) == "previous safetensors");
    std::vector<std::string> left = others_in(dir, "a.npy");
    CHECK(left == std::vector<std::string>{"a.safetensors"});
    // and without the limit both succeed
    diffuse::io::write_npy<double>(npy, big, {big.size()});
    CHECK(diffuse::io::read_npy(npy).as<double>() == big);
    w.write(st);
    CHECK(diffuse::io::read_safetensors(st).as<double>("big") == big);
}
#endif

TEST_CASE("read_file is bounded by its limit for files, devices and pipes", "[io][file][errors]") {
    const auto dir = scratch("read");
    const auto path = (dir / "ten.bin").string();
    put(path, "0123456789");
    CHECK(diffuse::io::read_file(path, 10).size() == 10);
    CHECK_THROWS_WITH(diffuse::io::read_file(path, 9, "my_reader"),
                      Contains("my_reader") && Contains("has 10 bytes, more than the limit of 9 bytes"));
    // a sparse 1 GiB file above the limit is refused from its size, without reading it
    const auto huge = (dir / "huge.bin").string();
    put(huge, "");
    fs::resize_file(huge, std::uintmax_t{1} << 30);
    CHECK_THROWS_WITH(diffuse::io::read_file(huge, 1000), Contains("more than the limit of 1000 bytes"));
    CHECK_THROWS_WITH(diffuse::io::read_file(dir.string(), 1000), Contains("is a directory"));
    CHECK_THROWS_WITH(diffuse::io::read_file((dir / "missing").string(), 1000), Contains("cannot open"));
    if (fs::exists("/dev/zero")) {
        CHECK_THROWS_WITH(diffuse::io::read_file("/dev/zero", 5'000'000), Contains("/dev/zero holds more than the limit of 5000000 bytes"));
    }
}
