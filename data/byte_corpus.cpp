// Byte-level training data: file reading, the train/validation split and batch sampling.
// Batches come from counter-based random numbers, so resuming needs only the batch index.
#include "data/byte_corpus.h"

#include <algorithm>
#include <filesystem>

#include "util/error.h"
#include "util/files.h"
#include "util/rng.h"

namespace diloco {

const char* ByteCorpus::builtin_dir() { return "/usr/share/games/fortunes"; }

ByteCorpus::ByteCorpus(std::string source, std::string text, double val_fraction, int seq)
    : source_(std::move(source)) {
    require(!text.empty(), source_ + ": empty data file");
    require(val_fraction > 0 && val_fraction < 1,
            "validation fraction " + std::to_string(val_fraction) + " must be in (0, 1)");
    size_t val = static_cast<size_t>(text.size() * val_fraction);
    size_t need = static_cast<size_t>(seq) + 1;
    require(val >= need && text.size() - val >= need,
            source_ + ": too short (" + std::to_string(text.size()) + " bytes): need " +
                std::to_string(need) + " bytes for training and for validation at sequence " +
                std::to_string(seq));
    const uint8_t* bytes = reinterpret_cast<const uint8_t*>(text.data());
    train_.assign(bytes, bytes + text.size() - val);
    val_.assign(bytes + text.size() - val, bytes + text.size());
}

ByteCorpus ByteCorpus::from_file(const std::string& path, double val_fraction, int seq) {
    return ByteCorpus(path, read_file(path), val_fraction, seq);
}

ByteCorpus ByteCorpus::builtin(double val_fraction, int seq) {
    namespace fs = std::filesystem;
    require(fs::is_directory(builtin_dir()),
            std::string(builtin_dir()) +
                ": built-in corpus not found (apt-get install fortunes, or pass --data FILE)");
    std::vector<std::string> files;
    for (const auto& entry : fs::directory_iterator(builtin_dir())) {
        const fs::path& p = entry.path();
        // The index files (.dat) are binary and the .u8 names are links to the same texts.
        if (entry.is_regular_file() && !entry.is_symlink() && !p.has_extension())
            files.push_back(p.string());
    }
    std::sort(files.begin(), files.end());
    std::string text;
    for (const std::string& f : files) text += read_file(f);
    return ByteCorpus(builtin_dir(), std::move(text), val_fraction, seq);
}

std::string ByteCorpus::describe() const {
    return std::to_string(train_.size()) + " train / " + std::to_string(val_.size()) +
           " validation bytes";
}

static void fill_row(TokenBatch& batch, int row, const std::vector<uint8_t>& data,
                     size_t offset) {
    for (int t = 0; t < batch.T; t++) {
        size_t i = static_cast<size_t>(row) * batch.T + t;
        batch.inputs[i] = data[offset + t];
        batch.targets[i] = data[offset + t + 1];
    }
}

TokenBatch ByteCorpus::train_batch(uint64_t seed, uint64_t index, int B, int T,
                                   int first_row) const {
    require(train_.size() > static_cast<size_t>(T), [&] {  // every micro-batch
        return source_ + ": training text shorter than one sequence of " + std::to_string(T);
    });
    TokenBatch batch(B, T);
    const size_t positions = train_.size() - T;  // windows of T + 1 bytes that fit
    for (int b = 0; b < B; b++) {
        Rng rng(seed, (index << 24) + first_row + b);  // one stream per (batch, row)
        fill_row(batch, b, train_, rng.below(positions));
    }
    return batch;
}

std::vector<TokenBatch> ByteCorpus::val_batches(int B, int T, int max_batches) const {
    const size_t windows = (val_.size() - 1) / T;
    std::vector<TokenBatch> batches;
    for (size_t w = 0; w < windows && static_cast<int>(batches.size()) < max_batches;) {
        int rows = static_cast<int>(std::min<size_t>(B, windows - w));
        TokenBatch batch(rows, T);
        for (int r = 0; r < rows; r++, w++) fill_row(batch, r, val_, w * T);
        batches.push_back(std::move(batch));
    }
    return batches;
}

}  // namespace diloco
