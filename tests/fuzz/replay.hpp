#pragma once
// The replay driver shared by the fuzz targets' CTest programs: feeds every file of the folders or files on
// the command line to the target. Files named ok_* must be accepted and bad_* rejected; other names (new
// crash reproducers) need only not crash.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace diffuse_fuzz {

inline int replay_main(int argc, char** argv, bool (*accepts)(const std::uint8_t*, std::size_t)) {
    namespace fs = std::filesystem;
    std::vector<fs::path> files;
    for (int i = 1; i < argc; ++i) {
        if (fs::is_directory(argv[i]))
            for (const auto& entry : fs::directory_iterator(argv[i]))
                if (entry.is_regular_file()) files.push_back(entry.path());
        if (fs::is_regular_file(argv[i])) files.emplace_back(argv[i]);
    }
    std::sort(files.begin(), files.end());
    if (files.empty()) {
        std::fprintf(stderr, "usage: %s corpus-folder-or-file...\n(no input files found)\n", argv[0]);
        return 2;
    }
    int failures = 0;
    for (const auto& path : files) {
        std::ifstream in(path, std::ios::binary);
        const std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
        const bool accepted = accepts(bytes.data(), bytes.size());
        const std::string name = path.filename().string();
        if ((name.starts_with("ok_") && !accepted) || (name.starts_with("bad_") && accepted)) {
            ++failures;
            std::fprintf(stderr, "%s: %s\n", name.c_str(), accepted ? "accepted, expected an error" : "rejected, expected to pass");
        }
    }
    std::printf("%zu inputs replayed, %d unexpected results\n", files.size(), failures);
    return failures == 0 ? 0 : 1;
}

}  // namespace diffuse_fuzz
