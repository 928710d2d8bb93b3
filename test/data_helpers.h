// Helpers for the data tests: gzip and JSON-lines files, a small trained tokenizer, and the
// documents an island's shards hold, decoded back to text.
#pragma once

#include <zlib.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/bpe_trainer.h"
#include "data/manifest.h"
#include "data/shard.h"
#include "data/tokenizer.h"
#include "test/helpers.h"

namespace diloco::test {

inline void write_gz(const std::string& path, const std::string& bytes) {
    gzFile f = gzopen(path.c_str(), "wb");
    REQUIRE(f != nullptr);
    REQUIRE(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) ==
            static_cast<int>(bytes.size()));
    REQUIRE(gzclose(f) == Z_OK);
}

// One JSON object per document: {"text": ..., "url": ...} (no url when it is empty).
inline std::string jsonl(const std::vector<std::string>& texts,
                         const std::vector<std::string>& urls = {}) {
    std::string out;
    for (size_t i = 0; i < texts.size(); i++) {
        nlohmann::json record = {{"text", texts[i]}};
        if (i < urls.size() && !urls[i].empty()) record["url"] = urls[i];
        out += record.dump() + "\n";
    }
    return out;
}

// A 300-token BPE trained on synthetic text, saved as encoder.json + vocab.bpe in dir.
inline Tokenizer small_tokenizer(const std::string& dir) {
    Tokenizer tok = train_bpe(synthetic_text(20000, 7), 300);
    tok.save_gpt2(dir);
    return tok;
}

// The documents of a split, in stream order: each starts at an <|endoftext|>.
inline std::vector<std::string> split_documents(const Manifest& m, const ShardSet& set,
                                                const Tokenizer& tok) {
    std::vector<std::string> docs;
    std::vector<int32_t> ids;
    bool open = false;
    for (const std::string& name : set.shards) {
        ShardFile shard(m.shard_path(name), m.vocab);
        for (size_t i = 0; i < shard.size(); i++) {
            if (shard[i] != tok.eot()) {
                ids.push_back(shard[i]);
                continue;
            }
            if (open) docs.push_back(tok.decode(ids));
            ids.clear();
            open = true;
        }
    }
    if (open) docs.push_back(tok.decode(ids));
    return docs;
}

}  // namespace diloco::test
