// Training data from token shards: a prepared directory (its manifest) or one .bin file,
// memory-mapped; an island's training stream as windows of T + 1 tokens in a seeded order, and
// fixed consecutive validation windows. Implements TrainData.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "data/shard.h"
#include "data/train_data.h"

namespace diloco {

// Shards read as one stream of tokens, in order.
class TokenStream {
public:
    void add(ShardFile shard);
    size_t size() const { return starts_.empty() ? 0 : starts_.back(); }
    size_t shards() const { return shards_.size(); }
    // Tokens [from, from + n), which may span shards, into out.
    void copy(size_t from, size_t n, int32_t* out) const;

private:
    std::vector<ShardFile> shards_;
    std::vector<size_t> starts_;  // starts_[i]: end of shard i in the stream
};

struct ShardDataOptions {
    int island = 0, islands = 1;  // which training stream (see ShardData::open)
    int seq = 1;                  // the longest T that will be asked for: checked at open
    double val_fraction = 0.1;    // a single .bin: its tail held out for validation
};

// Whether --data names token shards (a directory, a .json manifest or a .bin shard) rather than
// a text file.
bool is_shard_data(const std::string& path);

class ShardData : public TrainData {
public:
    // path: a manifest.json, a directory holding one, or a .bin shard. With a manifest of K
    // islands, island i of K reads only its own shards (the non-i.i.d. setting) and a single
    // island reads them all. A manifest of one island (and a .bin shard) serves any number of
    // islands: island i takes every islands-th window, so islands never share a window.
    // Anything else is an Error.
    static std::unique_ptr<ShardData> open(const std::string& path, const ShardDataOptions& o);

    std::string source() const override { return source_; }
    int vocab() const override { return vocab_; }
    int eot() const override { return eot_; }
    std::string describe() const override;
    // The directory holding the tokenizer files (encoder.json, vocab.bpe), or "" for a .bin.
    std::string tokenizer_dir() const override { return tokenizer_dir_; }

    // Row r = first_row + b of batch `index` is window perm(index x C + r mod W) of the island's
    // W windows, where perm is a seeded permutation and C ~ W / golden ratio is coprime with W:
    // the rows of one batch are distinct windows (while the batch has no more than W rows), and
    // successive batches spread over all windows before they come back.
    TokenBatch train_batch(uint64_t seed, uint64_t index, int B, int T,
                           int first_row = 0) const override;
    // Consecutive windows of T + 1 tokens from the start of the validation split, B per batch.
    std::vector<TokenBatch> val_batches(int B, int T, int max_batches) const override;

    // Window count of this island's stream for sequence length T, and where window w starts.
    uint64_t train_windows(int T) const;
    uint64_t train_window_start(uint64_t w, int T) const;
    // Which window row `row` of batch `index` reads.
    uint64_t window_of(uint64_t seed, uint64_t index, uint64_t row, int T) const;

private:
    struct Span {  // tokens [begin, end) of a stream
        std::shared_ptr<const TokenStream> stream;
        size_t begin = 0, end = 0;
        size_t size() const { return end - begin; }
    };
    static std::unique_ptr<ShardData> from_manifest(const std::string& path,
                                                    const ShardDataOptions& o);
    static std::unique_ptr<ShardData> from_bin(const std::string& path, const ShardDataOptions& o);
    void check(const ShardDataOptions& o) const;

    std::string source_, tokenizer_dir_, what_;
    int vocab_ = 0, eot_ = 0;
    Span train_, val_;
    uint64_t stride_ = 1, offset_ = 0;  // this island's windows: offset_, offset_ + stride_, ...
};

}  // namespace diloco
