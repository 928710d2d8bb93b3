// Reading and writing manifest.json; every key is checked on reading (type, range, and against
// the others) so that a hand-edited or truncated manifest is a clear Error, not a wrong run.
#include "data/manifest.h"

#include <climits>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "data/island_split.h"
#include "data/shard.h"
#include "util/error.h"
#include "util/files.h"
#include "util/json_file.h"

namespace diloco {

using json = nlohmann::json;

// Far above any run, so that a corrupt count is refused before it sizes anything.
static constexpr int kMaxIslands = 1 << 16;

static json to_json(const ShardSet& s) {
    return {{"documents", s.documents}, {"tokens", s.tokens}, {"shards", s.shards}};
}

void write_manifest(const Manifest& m) {
    json train = json::array();
    for (size_t i = 0; i < m.train.size(); i++) {
        json island = to_json(m.train[i]);
        island["island"] = i;
        train.push_back(island);
    }
    json j = {{"format", "diloco-shards"},
              {"version", Manifest::kVersion},
              {"inputs", m.inputs},
              {"field", m.field},
              {"tokenizer", {{"source", m.tokenizer}, {"vocab", m.vocab}, {"eot", m.eot}}},
              {"token_bytes", m.token_bytes},
              {"split", m.split},
              {"islands", m.islands},
              {"seed", m.seed},
              {"shard_tokens", m.shard_tokens},
              {"malformed_lines", m.malformed_lines},
              {"val", to_json(m.val)},
              {"train", train}};
    write_file_atomic(m.path(), j.dump(2) + "\n");
}

// A shard's name: a plain file name in the manifest's directory, never a path out of it.
static std::string shard_name(const json& v, const std::string& where) {
    const std::string name = v.is_string() ? v.get<std::string>() : "";
    require(!name.empty() && name.find('/') == std::string::npos && name != "." && name != "..",
            where + " must be a file name in the manifest's directory, found " +
                v.dump(-1, ' ', false, json::error_handler_t::replace));
    return name;
}

static ShardSet shard_set(const json& j, const std::string& where) {
    ShardSet s;
    s.documents = json_count(j, "documents", where);
    s.tokens = json_count(j, "tokens", where);
    // Each document holds its <|endoftext|> at least.
    require(s.documents <= s.tokens, where + ": " + std::to_string(s.documents) +
                                         " documents in " + std::to_string(s.tokens) +
                                         " tokens; each document is one token at least");
    const json& shards = json_field(j, "shards", where);
    require(shards.is_array(), where + ": field \"shards\" must be an array of file names");
    for (size_t i = 0; i < shards.size(); i++)
        s.shards.push_back(shard_name(shards[i], where + ": shards[" + std::to_string(i) + "]"));
    require(s.tokens == 0 || !s.shards.empty(),
            where + ": " + std::to_string(s.tokens) + " tokens in no shard");
    return s;
}

static Manifest from_json(const json& j, const std::string& file) {
    Manifest m;
    const std::string format = json_string(j, "format", file);
    require(format == "diloco-shards", file + ": field \"format\" is \"" + format +
                                           "\", expected \"diloco-shards\"");
    json_int(j, "version", file, Manifest::kVersion, Manifest::kVersion);
    m.inputs = json_strings(j, "inputs", file);
    m.field = json_string(j, "field", file);
    const json& tokenizer = json_object(j, "tokenizer", file);
    const std::string tok = file + ": tokenizer";
    m.tokenizer = json_string(tokenizer, "source", tok);
    m.vocab = int(json_int(tokenizer, "vocab", tok, 1, INT_MAX));
    m.eot = int(json_int(tokenizer, "eot", tok, 0, m.vocab - 1));
    m.token_bytes = int(json_int(j, "token_bytes", file, 2, 4));
    require(m.token_bytes == shard_token_bytes(m.vocab),
            file + ": field \"token_bytes\" is " + std::to_string(m.token_bytes) +
                ", but ids of a vocabulary of " + std::to_string(m.vocab) + " take " +
                std::to_string(shard_token_bytes(m.vocab)));
    m.split = json_string(j, "split", file);
    try {
        parse_split(m.split);
    } catch (const Error& e) {
        throw Error(file + ": field \"split\": " + e.what());
    }
    m.islands = int(json_int(j, "islands", file, 1, kMaxIslands));
    m.seed = json_count(j, "seed", file);
    m.shard_tokens = json_count(j, "shard_tokens", file, INT32_MAX);
    require(m.shard_tokens >= 1, file + ": field \"shard_tokens\" must be at least 1, found 0");
    m.malformed_lines = json_count(j, "malformed_lines", file);
    m.val = shard_set(json_object(j, "val", file), file + ": val");
    const json& train = json_field(j, "train", file);
    require(train.is_array() && train.size() == size_t(m.islands),
            file + ": field \"train\" must list the " + std::to_string(m.islands) +
                " island(s) of field \"islands\", found " +
                std::to_string(train.is_array() ? train.size() : 0));
    for (size_t i = 0; i < train.size(); i++) {
        const std::string where = file + ": train[" + std::to_string(i) + "]";
        json_int(train[i], "island", where, int64_t(i), int64_t(i));
        m.train.push_back(shard_set(train[i], where));
    }
    return m;
}

Manifest read_manifest(const std::string& path) {
    namespace fs = std::filesystem;
    const bool dir = path_kind(path) == PathKind::kDirectory;
    const std::string file = dir ? (fs::path(path) / "manifest.json").string() : path;
    require(path_kind(file) != PathKind::kMissing,
            file + ": not found (prepare the directory with `diloco prepare`)");
    Manifest m = from_json(read_json_file(file, kMaxJsonFileBytes), file);
    m.dir = fs::path(file).parent_path().string();
    if (m.dir.empty()) m.dir = ".";
    return m;
}

}  // namespace diloco
