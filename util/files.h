// Whole-file reads and atomic writes (temporary name, fsync, rename), with errors naming the file.
// Every output of diloco goes through write_file_atomic so a crash never leaves half a file.
#pragma once

#include <string>
#include <string_view>

namespace diloco {

std::string read_file(const std::string& path);
void write_file_atomic(const std::string& path, std::string_view bytes);

}  // namespace diloco
