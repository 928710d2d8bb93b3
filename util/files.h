// Whole-file reads and atomic writes (temporary name, fsync, rename), with errors naming the file.
// Every output of diloco goes through write_file_atomic so a crash never leaves half a file.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace diloco {

std::string read_file(const std::string& path);
void write_file_atomic(const std::string& path, std::string_view bytes);
// The same for a file made of parts, written one after the other without joining them.
void write_file_atomic(const std::string& path, const std::vector<std::string_view>& parts);
// Creates directory dir if needed and proves it writable by creating and removing a file in it,
// so that an output option fails at the start of a run, not after it; what names the option.
void require_writable_dir(const std::string& dir, const std::string& what);
// Points symbolic link `link` at `target` in one step (a new link renamed over the old one), so
// that a reader sees the old target or the new, never neither.
void replace_symlink_atomic(const std::string& link, const std::string& target);

}  // namespace diloco
