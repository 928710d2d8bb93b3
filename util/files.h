// Reads of regular files with a size limit, and atomic writes (temporary name, fsync, rename),
// with errors naming the file. Every input of diloco is opened through InputFile, every output
// goes through write_file_atomic so a crash never leaves half a file.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace diloco {

// What a path names once its symbolic links are followed. A loop of links, or a path that
// cannot be examined (permissions, a name too long), is an Error naming it.
enum class PathKind { kMissing, kRegular, kDirectory, kOther };
PathKind path_kind(const std::string& path);

// Ceilings on what a reader takes in whole, far above any real file of its kind, so that a
// wrong file (or a huge one under the right name) is refused before memory is asked for it.
constexpr uint64_t kMaxJsonFileBytes = uint64_t(64) << 20;      // configs, manifest, index
constexpr uint64_t kMaxTokenizerFileBytes = uint64_t(1) << 30;  // encoder.json, vocab.bpe, ...
constexpr uint64_t kMaxWholeFileBytes = uint64_t(1) << 40;      // weights, training state, text

// A regular file open for reading. A FIFO, a device, a socket or a directory is refused when
// opened, before a byte is read (a FIFO never blocks it, /dev/zero never fills memory); links
// are followed once, by the open itself, and a loop of them is an Error naming the file.
class InputFile {
public:
    explicit InputFile(const std::string& path);
    ~InputFile();
    InputFile(const InputFile&) = delete;
    InputFile& operator=(const InputFile&) = delete;

    const std::string& path() const { return path_; }
    int fd() const { return fd_; }
    uint64_t size() const { return size_; }
    // Bytes [offset, offset + n) into out; an Error naming the file when it ends before them.
    void read(uint64_t offset, char* out, size_t n) const;
    // The whole file; an Error naming the file and the limit when it is larger than max_bytes.
    std::string read_all(uint64_t max_bytes) const;

private:
    std::string path_;
    int fd_ = -1;
    uint64_t size_ = 0;
};

// InputFile(path).read_all(max_bytes).
std::string read_file(const std::string& path, uint64_t max_bytes = kMaxWholeFileBytes);
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
