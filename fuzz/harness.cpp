// Scratch files and multi-file inputs for the fuzz harnesses: one private directory per process
// under the temp dir, so that parallel fuzzers and ctest runs never share files.
#include "fuzz/harness.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace diloco::fuzz {

namespace {

struct ScratchDir {
    std::string path;
    ScratchDir() {
        std::string pattern = (std::filesystem::temp_directory_path() / "diloco-fuzz-XXXXXX");
        if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
        path = pattern;
    }
    ~ScratchDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
};

}  // namespace

const std::string& scratch_dir() {
    static ScratchDir dir;
    return dir.path;
}

std::string_view as_text(const uint8_t* data, size_t size) {
    return {reinterpret_cast<const char*>(data), size};
}

std::vector<std::string> split_parts(std::string_view text, size_t parts) {
    std::vector<std::string> out;
    while (out.size() + 1 < parts) {
        const size_t cut = text.find(kSplit);
        if (cut == std::string_view::npos) break;
        out.emplace_back(text.substr(0, cut));
        text.remove_prefix(cut + kSplit.size());
    }
    out.emplace_back(text);
    out.resize(parts);
    return out;
}

std::string join_parts(const std::vector<std::string>& parts) {
    std::string out;
    for (size_t i = 0; i < parts.size(); i++) out += (i ? std::string(kSplit) : "") + parts[i];
    return out;
}

std::string scratch_file(const std::string& name, std::string_view bytes) {
    const std::string path = scratch_dir() + "/" + name;
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out.good()) throw std::runtime_error(path + ": cannot write the fuzz input");
    return path;
}

}  // namespace diloco::fuzz
