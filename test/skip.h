// Skipping a test case from inside it: ctest treats exit code 77 as "skipped".
// Used when ../shared/data or a GPU is absent; the reason is printed first.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace diloco::test {

[[noreturn]] inline void skip_test(const std::string& why) {
    std::printf("SKIPPED: %s\n", why.c_str());
    std::fflush(stdout);
    std::_Exit(77);
}

// Path of a file under ../shared/data; skips the test when it is absent.
inline std::string shared_data(const std::string& relative) {
    std::string path = std::string(DILOCO_SHARED_DATA) + "/" + relative;
    if (!std::filesystem::exists(path)) skip_test(path + " is absent (no ../shared/data)");
    return path;
}

}  // namespace diloco::test
