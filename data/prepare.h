// `diloco prepare` as a library call: documents in, token shards and a manifest out, with a
// validation split taken by document and the training documents dealt to islands.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/documents.h"
#include "data/island_split.h"
#include "data/manifest.h"

namespace diloco {

struct PrepareOptions {
    std::vector<std::string> inputs;  // files and directories (data/documents.h)
    std::string tokenizer;            // anything Tokenizer::load reads
    std::string out;                  // the directory to write
    int islands = 1;
    SplitMethod split = SplitMethod::iid;
    // Validation documents: the first val_docs of the inputs when val_docs >= 0; otherwise
    // document i is one when ceil((i + 1) F) > ceil(i F) for F = val_fraction: the first
    // document, then one in every 1/F, spread evenly over the inputs (F = 0: none).
    int64_t val_docs = -1;
    double val_fraction = 0.01;
    uint64_t shard_tokens = 100'000'000;
    std::string field = "text";
    bool strict = false;
    uint64_t seed = 1337;  // for the cluster split
};

struct PrepareProgress {
    uint64_t documents = 0, text_bytes = 0, tokens = 0;
    uint64_t input_bytes = 0, total_input_bytes = 0;  // of the files (compressed, for gzip)
    double seconds = 0;
};

struct PrepareResult {
    Manifest manifest;
    ReadStats read;  // documents, text bytes, malformed lines
    double seconds = 0;
    int threads = 1;
};

constexpr size_t kClusterSample = 20000;

// One pass over the inputs (after, for the cluster split, fitting the clusters on the first
// kClusterSample documents): chunks of records are read on one thread while the previous
// chunk is parsed and tokenized on all of them, and the documents (each one <|endoftext|> then
// its ids, as in GPT-2's training data) are appended in input order to fixed-size shards:
// out/val_NNNNNN.bin and out/train_iI_NNNNNN.bin. Training documents go to islands by the
// split: iid deals them round-robin, domain by url_host (the file name when there is no url),
// cluster by nearest centroid. The tokenizer's files are copied to out; out/manifest.json is
// written last, so a failed run leaves no manifest. progress is called after every chunk.
PrepareResult prepare(const PrepareOptions& options,
                      const std::function<void(const PrepareProgress&)>& progress);

}  // namespace diloco
