// What a trainer needs from a dataset: deterministic training batches by index, a fixed
// validation set and the vocabulary size. Byte corpora and token shards both provide it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace diloco {

// B rows of T inputs and the T next tokens that are their targets, row-major.
struct TokenBatch {
    TokenBatch() = default;
    TokenBatch(int b, int t)
        : B(b), T(t), inputs(static_cast<size_t>(b) * t), targets(static_cast<size_t>(b) * t) {}
    int B = 0, T = 0;
    std::vector<int32_t> inputs, targets;
};

class TrainData {
public:
    virtual ~TrainData() = default;
    virtual std::string source() const = 0;
    virtual int vocab() const = 0;
    // The id that ends a document (transformers' bos and eos for a model trained on it).
    virtual int eot() const = 0;
    // A short account of the sizes, for the run's first line.
    virtual std::string describe() const = 0;
    // The directory with the files of the tokenizer that made the tokens (encoder.json,
    // vocab.bpe), for whoever decodes a model trained on them; "" for bytes.
    virtual std::string tokenizer_dir() const { return {}; }
    // Rows first_row .. first_row + B - 1 of training batch number `index` for a seed: a pure
    // function of its arguments, so the data position of a run is the index of its next batch,
    // and K ranks taking rows r*B.. of one batch see exactly what one rank with K*B rows sees.
    virtual TokenBatch train_batch(uint64_t seed, uint64_t index, int B, int T,
                                   int first_row = 0) const = 0;
    // The fixed validation set, at most max_batches batches of up to B rows.
    virtual std::vector<TokenBatch> val_batches(int B, int T, int max_batches) const = 0;
};

}  // namespace diloco
