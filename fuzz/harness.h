// What every fuzz harness shares: the libFuzzer entry point it defines, the input written to a
// scratch file (every reader takes a path), and inputs made of several files.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace diloco::fuzz {

// Marks an input that holds several files: the parts between separators, in order.
inline constexpr std::string_view kSplit = "\n#diloco-fuzz-split#\n";

std::string_view as_text(const uint8_t* data, size_t size);
// The first `parts` pieces of text cut at kSplit; missing ones are empty, the last takes the rest.
std::vector<std::string> split_parts(std::string_view text, size_t parts);
std::string join_parts(const std::vector<std::string>& parts);
// Writes bytes to `name` in this process's scratch directory and returns the path.
std::string scratch_file(const std::string& name, std::string_view bytes);
// The scratch directory itself (created once per process, removed at exit).
const std::string& scratch_dir();

}  // namespace diloco::fuzz
