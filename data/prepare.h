// `diloco prepare` as a library call: documents in, token shards and a manifest out, with a
// validation split by document (of a text file, its last tokens), the rest dealt to islands.
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
    // Validation: the first val_docs documents of the inputs, whole, when val_docs >= 0 (a
    // text file is one document). Otherwise JSON-lines document i is one when
    // ceil((i + 1) F) > ceil(i F) for F = val_fraction: the first, then one in every 1/F,
    // spread evenly over the inputs (F = 0: none); and a text file (a book, Tiny Shakespeare)
    // is cut by tokens, nanoGPT's way: its last text_val_fraction of ids are held out
    // (text_val_ids), so that a single file gives both sets.
    int64_t val_docs = -1;
    double val_fraction = 0.01;
    double text_val_fraction = 0.1;
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
    ReadStats read;           // documents, text bytes, malformed lines
    uint64_t text_tails = 0;  // validation documents that are the tail of a text file
    double seconds = 0;
    int threads = 1;
};

constexpr size_t kClusterSample = 20000;

// The ids a text file of `ids` ids (after its <|endoftext|>) holds out for validation: the
// nearest whole number to ids x fraction, at least one and leaving one for training; 0 when
// fraction is 0 or the file has fewer than two ids.
uint64_t text_val_ids(uint64_t ids, double fraction);

// One pass over the inputs (after, for the cluster split, fitting the clusters on the first
// kClusterSample documents): chunks of records are read on one thread while the previous
// chunk is parsed and tokenized on all of them, and the documents (each one <|endoftext|> then
// its ids, as in GPT-2's training data) are appended in input order to fixed-size shards:
// out/val_NNNNNN.bin and out/train_iI_NNNNNN.bin. A text file cut by tokens gives two
// documents, each led by <|endoftext|>: its training part, then its held-out tail in
// validation. Training documents go to islands by the split: iid deals them round-robin,
// domain by url_host (the file name when there is no url), cluster by nearest centroid. The
// tokenizer's files are copied to out; out/manifest.json is written last, so a failed run
// leaves no manifest. progress is called after every chunk.
PrepareResult prepare(const PrepareOptions& options,
                      const std::function<void(const PrepareProgress&)>& progress);

}  // namespace diloco
