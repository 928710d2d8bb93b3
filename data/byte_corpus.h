// Byte-level training data (vocabulary 256): a text file, or the built-in corpus (Debian's
// fortunes), split into training text and a held-out tail, served as deterministic batches.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/train_data.h"

namespace diloco {

class ByteCorpus : public TrainData {
public:
    // Reads a text file; an Error names the file when it is missing, empty or too short for
    // one validation and one training window of seq + 1 bytes.
    static ByteCorpus from_file(const std::string& path, double val_fraction, int seq);
    // The English fortunes of Debian's `fortunes` package, files concatenated in name order.
    static ByteCorpus builtin(double val_fraction, int seq);
    static const char* builtin_dir();

    int vocab() const override { return 256; }
    // Bytes have no special token: NUL, which text does not hold, stands for the end of text.
    int eot() const override { return 0; }
    std::string source() const override { return source_; }
    std::string describe() const override;
    size_t train_size() const { return train_.size(); }
    size_t val_size() const { return val_.size(); }

    // B windows of T + 1 bytes at random offsets of the training text.
    TokenBatch train_batch(uint64_t seed, uint64_t index, int B, int T,
                           int first_row = 0) const override;
    // Consecutive windows of the held-out tail, B per batch (fewer in the last).
    std::vector<TokenBatch> val_batches(int B, int T, int max_batches) const override;

private:
    ByteCorpus(std::string source, std::string text, double val_fraction, int seq);
    std::string source_;
    std::vector<uint8_t> train_, val_;
};

}  // namespace diloco
