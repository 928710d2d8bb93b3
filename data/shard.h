// Token shard files, llm.c-compatible: a 256 x int32 header (magic, version, token count, and
// our vocabulary size), then the tokens as uint16 (version 1) or uint32 (version 2, ours).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace diloco {

// Header words. llm.c writes magic, version and count and leaves the rest zero; we also record
// the vocabulary size in word 3 (0: unknown, as in llm.c's files).
constexpr int32_t kShardMagic = 20240520;
constexpr int32_t kShardVersionU16 = 1;  // llm.c's GPT-2 format
constexpr int32_t kShardVersionU32 = 2;  // ours: ids that need more than 16 bits
constexpr size_t kShardHeaderWords = 256;
constexpr size_t kShardHeaderBytes = kShardHeaderWords * sizeof(int32_t);

// Ids of a vocabulary over 65,535 tokens are stored as uint32, the others as uint16.
int shard_token_bytes(int vocab);

// Appends tokens to path.tmp and renames it to path at finish(), after an fsync: a crash never
// leaves a half-written shard under the final name. Destroying it unfinished removes path.tmp.
class ShardWriter {
public:
    ShardWriter(const std::string& path, int vocab);
    ~ShardWriter();
    ShardWriter(const ShardWriter&) = delete;
    ShardWriter& operator=(const ShardWriter&) = delete;

    void append(const int32_t* tokens, size_t n);
    void finish();
    size_t tokens() const { return count_; }

private:
    void flush();
    std::string path_, tmp_;
    int vocab_, width_;
    std::FILE* file_ = nullptr;
    std::string buffer_;
    size_t count_ = 0;
};

// A shard file memory-mapped read-only, checked when opened: magic, version, size == header +
// count x width, and every id < vocab. Each violation is an Error naming the file and where.
class ShardFile {
public:
    // vocab 0: take it from the header; a header without one (llm.c's files) means GPT-2's
    // 50,257 for uint16 shards. A nonzero vocab must agree with a nonzero header vocab.
    explicit ShardFile(const std::string& path, int vocab = 0);
    ~ShardFile();
    ShardFile(ShardFile&& other) noexcept;
    ShardFile(const ShardFile&) = delete;
    ShardFile& operator=(const ShardFile&) = delete;
    ShardFile& operator=(ShardFile&&) = delete;

    const std::string& path() const { return path_; }
    size_t size() const { return count_; }
    int vocab() const { return vocab_; }
    int token_bytes() const { return width_; }
    int32_t operator[](size_t i) const {
        return width_ == 2 ? static_cast<const uint16_t*>(tokens_)[i]
                           : static_cast<int32_t>(static_cast<const uint32_t*>(tokens_)[i]);
    }
    // Tokens [from, from + n) into out.
    void copy(size_t from, size_t n, int32_t* out) const;

private:
    void check_header(const int32_t* header, size_t file_bytes, int vocab);
    void check_ids() const;
    std::string path_;
    void* map_ = nullptr;
    size_t map_bytes_ = 0;
    const void* tokens_ = nullptr;
    size_t count_ = 0;
    int vocab_ = 0, width_ = 2;
};

}  // namespace diloco
