// The manifest of a prepared data directory (DIR/manifest.json): the inputs, the tokenizer, and
// for the validation split and each island's training split its documents, tokens and shards.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace diloco {

// One split: shard file names are relative to the manifest's directory, in stream order.
struct ShardSet {
    uint64_t documents = 0, tokens = 0;
    std::vector<std::string> shards;
};

struct Manifest {
    static constexpr int kVersion = 1;
    std::string dir;  // the directory it was read from or is written to (not stored)
    std::vector<std::string> inputs;
    std::string field;
    std::string tokenizer;  // the tokenizer it was prepared with; a copy is in dir
    int vocab = 0, eot = 0, token_bytes = 2;
    std::string split;
    int islands = 1;
    uint64_t seed = 0, shard_tokens = 0, malformed_lines = 0;
    ShardSet val;
    std::vector<ShardSet> train;  // one per island

    std::string path() const { return dir + "/manifest.json"; }
    std::string shard_path(const std::string& name) const { return dir + "/" + name; }
};

// Writes dir/manifest.json atomically.
void write_manifest(const Manifest& m);
// Reads a manifest.json, or the one in a directory; an Error names the file and the key that
// is missing, has the wrong type or an impossible value.
Manifest read_manifest(const std::string& path);

}  // namespace diloco
