// Token shard files: the atomic writer and the memory-mapped, fully checked reader.
// POSIX calls throughout, so the writer can fsync and the reader can mmap.
#include "data/shard.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "util/error.h"
#include "util/files.h"

namespace diloco {

namespace {

constexpr int kGpt2Vocab = 50257;  // what an llm.c header without a vocabulary means
constexpr size_t kWriteBuffer = 1 << 20;

std::string errno_text() { return std::strerror(errno); }

// After a rename, the directory entry itself must reach the disk.
void fsync_parent(const std::string& path) {
    std::string dir = std::filesystem::path(path).parent_path().string();
    int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
    if (fd < 0) return;  // some filesystems refuse; the rename is atomic all the same
    ::fsync(fd);
    ::close(fd);
}

void write_at(int fd, const void* data, size_t n, off_t offset, const std::string& path) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
        ssize_t w = ::pwrite(fd, p, n, offset);
        if (w < 0 && errno == EINTR) continue;
        require(w > 0, [&] { return path + ": write failed (" + errno_text() + ")"; });
        p += w, n -= static_cast<size_t>(w), offset += w;
    }
}

}  // namespace

int shard_token_bytes(int vocab) { return vocab > 65535 ? 4 : 2; }

// ---------------------------------------------------------------------------------------------
// Writing.

ShardWriter::ShardWriter(const std::string& path, int vocab)
    : path_(path), tmp_(path + ".tmp"), vocab_(vocab), width_(shard_token_bytes(vocab)) {
    require(vocab > 0, path + ": a shard needs a positive vocabulary size");
    file_ = std::fopen(tmp_.c_str(), "wb");
    require(file_ != nullptr, tmp_ + ": cannot create (" + errno_text() + ")");
    buffer_.assign(kShardHeaderBytes, '\0');  // the real header is written at finish()
}

ShardWriter::~ShardWriter() {
    if (!file_) return;
    std::fclose(file_);
    ::unlink(tmp_.c_str());
}

void ShardWriter::append(const int32_t* tokens, size_t n) {
    require(count_ + n <= INT32_MAX,
            [&] { return path_ + ": more than 2^31 - 1 tokens in one shard"; });
    for (size_t i = 0; i < n; i++) {
        if (tokens[i] < 0 || tokens[i] >= vocab_)
            throw Error(path_ + ": token id " + std::to_string(tokens[i]) +
                        " outside the vocabulary (" + std::to_string(vocab_) + ")");
        uint32_t t = static_cast<uint32_t>(tokens[i]);
        char bytes[4] = {char(t), char(t >> 8), char(t >> 16), char(t >> 24)};  // little-endian
        buffer_.append(bytes, width_);
    }
    count_ += n;
    if (buffer_.size() >= kWriteBuffer) flush();
}

void ShardWriter::flush() {
    require(std::fwrite(buffer_.data(), 1, buffer_.size(), file_) == buffer_.size(),
            [&] { return tmp_ + ": write failed (" + errno_text() + ")"; });
    buffer_.clear();
}

void ShardWriter::finish() {
    require(file_ != nullptr, path_ + ": finished twice");
    flush();
    require(std::fflush(file_) == 0, tmp_ + ": write failed (" + errno_text() + ")");
    int32_t header[kShardHeaderWords] = {};
    header[0] = kShardMagic;
    header[1] = width_ == 2 ? kShardVersionU16 : kShardVersionU32;
    header[2] = static_cast<int32_t>(count_);
    header[3] = vocab_;
    int fd = ::fileno(file_);
    write_at(fd, header, sizeof header, 0, tmp_);
    require(::fsync(fd) == 0, tmp_ + ": fsync failed (" + errno_text() + ")");
    int closed = std::fclose(file_);
    file_ = nullptr;
    if (closed != 0 || ::rename(tmp_.c_str(), path_.c_str()) != 0) {
        std::string why = errno_text();
        ::unlink(tmp_.c_str());
        throw Error(path_ + ": cannot close and rename into place (" + why + ")");
    }
    fsync_parent(path_);
}

// ---------------------------------------------------------------------------------------------
// Reading.

ShardFile::ShardFile(const std::string& path, int vocab) : path_(path) {
    size_t bytes = 0;
    {
        const InputFile file(path);  // a regular file: a FIFO or a device is refused here
        bytes = static_cast<size_t>(file.size());
        if (bytes >= kShardHeaderBytes)
            map_ = ::mmap(nullptr, bytes, PROT_READ, MAP_SHARED, file.fd(), 0);
    }  // the mapping outlives the descriptor
    require(bytes >= kShardHeaderBytes,
            path + ": " + std::to_string(bytes) + " bytes, shorter than the " +
                std::to_string(kShardHeaderBytes) + "-byte shard header");
    require(map_ != MAP_FAILED, path + ": cannot mmap (" + errno_text() + ")");
    map_bytes_ = bytes;
    try {
        check_header(static_cast<const int32_t*>(map_), bytes, vocab);
        check_ids();
    } catch (...) {
        ::munmap(map_, map_bytes_);
        throw;
    }
}

ShardFile::~ShardFile() {
    if (map_ && map_ != MAP_FAILED) ::munmap(map_, map_bytes_);
}

ShardFile::ShardFile(ShardFile&& o) noexcept
    : path_(std::move(o.path_)),
      map_(o.map_),
      map_bytes_(o.map_bytes_),
      tokens_(o.tokens_),
      count_(o.count_),
      vocab_(o.vocab_),
      width_(o.width_) {
    o.map_ = nullptr;
}

void ShardFile::check_header(const int32_t* h, size_t file_bytes, int vocab) {
    require(h[0] == kShardMagic, path_ + ": bad magic " + std::to_string(h[0]) +
                                     " at byte 0 (a token shard starts with " +
                                     std::to_string(kShardMagic) + ")");
    require(h[1] == kShardVersionU16 || h[1] == kShardVersionU32,
            path_ + ": unsupported shard version " + std::to_string(h[1]) +
                " at byte 4 (known: 1 = uint16 tokens, 2 = uint32 tokens)");
    require(h[2] >= 0, path_ + ": negative token count " + std::to_string(h[2]) + " at byte 8");
    width_ = h[1] == kShardVersionU16 ? 2 : 4;
    count_ = static_cast<size_t>(h[2]);
    size_t want = kShardHeaderBytes + count_ * width_;
    require(file_bytes == want,
            path_ + ": " + std::to_string(file_bytes) + " bytes, but the header's " +
                std::to_string(count_) + " tokens of " + std::to_string(width_) + " bytes need " +
                std::to_string(want) + (file_bytes < want ? " (truncated)" : " (trailing bytes)"));
    int recorded = h[3];
    require(recorded >= 0,
            path_ + ": negative vocabulary size " + std::to_string(recorded) + " at byte 12");
    require(vocab == 0 || recorded == 0 || vocab == recorded,
            path_ + ": vocabulary " + std::to_string(recorded) + " in the header, expected " +
                std::to_string(vocab));
    vocab_ = vocab ? vocab : recorded;
    if (vocab_ == 0) {
        require(width_ == 2, path_ + ": a uint32 shard without a vocabulary size in its header");
        vocab_ = kGpt2Vocab;
    }
    tokens_ = static_cast<const char*>(map_) + kShardHeaderBytes;
}

// Every id is checked once, when the shard opens, so a bad shard fails before training starts
// rather than at the batch that happens to read it.
void ShardFile::check_ids() const {
    size_t first_bad = count_;
    const int64_t n = static_cast<int64_t>(count_);
#pragma omp parallel for reduction(min : first_bad) schedule(static)
    for (int64_t i = 0; i < n; i++)
        if ((*this)[i] < 0 || (*this)[i] >= vocab_) first_bad = std::min<size_t>(first_bad, i);
    if (first_bad == count_) return;
    throw Error(path_ + ": token " + std::to_string(first_bad) + " (byte offset " +
                std::to_string(kShardHeaderBytes + first_bad * width_) + ") is " +
                std::to_string(static_cast<uint32_t>((*this)[first_bad])) +
                ", not below the vocabulary size " + std::to_string(vocab_));
}

void ShardFile::copy(size_t from, size_t n, int32_t* out) const {
    for (size_t i = 0; i < n; i++) out[i] = (*this)[from + i];
}

}  // namespace diloco
