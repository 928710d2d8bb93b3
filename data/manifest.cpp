// Reading and writing manifest.json with nlohmann/json; every key is checked on reading so
// that a hand-edited or truncated manifest is a clear Error rather than a wrong run.
#include "data/manifest.h"

#include <climits>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "util/error.h"
#include "util/files.h"

namespace diloco {

using json = nlohmann::json;

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

// A whole number in 0..max: nlohmann would truncate 300.7 and wrap -1 without a word.
static uint64_t count_at(const json& j, const char* key, uint64_t max = UINT64_MAX) {
    const json& v = j.at(key);
    const bool whole = v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0);
    require(whole && v.get<uint64_t>() <= max, std::string("\"") + key + "\" is " + v.dump() +
                                                   ", not a whole number up to " +
                                                   std::to_string(max));
    return v.get<uint64_t>();
}

static int int_at(const json& j, const char* key) { return int(count_at(j, key, INT_MAX)); }

static ShardSet shard_set(const json& j) {
    ShardSet s;
    s.documents = count_at(j, "documents");
    s.tokens = count_at(j, "tokens");
    s.shards = j.at("shards").get<std::vector<std::string>>();
    return s;
}

static Manifest from_json(const json& j) {
    Manifest m;
    require(j.at("format") == "diloco-shards", "not a diloco shard manifest (format)");
    require(j.at("version") == Manifest::kVersion,
            "unsupported manifest version " + j.at("version").dump());
    m.inputs = j.at("inputs").get<std::vector<std::string>>();
    m.field = j.at("field").get<std::string>();
    m.tokenizer = j.at("tokenizer").at("source").get<std::string>();
    m.vocab = int_at(j.at("tokenizer"), "vocab");
    m.eot = int_at(j.at("tokenizer"), "eot");
    m.token_bytes = int_at(j, "token_bytes");
    m.split = j.at("split").get<std::string>();
    m.islands = int_at(j, "islands");
    m.seed = count_at(j, "seed");
    m.shard_tokens = count_at(j, "shard_tokens");
    m.malformed_lines = count_at(j, "malformed_lines");
    m.val = shard_set(j.at("val"));
    for (const json& island : j.at("train")) m.train.push_back(shard_set(island));
    require(m.vocab > 0, "vocabulary size must be positive");
    require(m.islands >= 1 && m.train.size() == size_t(m.islands),
            "\"islands\" is " + std::to_string(m.islands) + " but \"train\" lists " +
                std::to_string(m.train.size()));
    return m;
}

Manifest read_manifest(const std::string& path) {
    namespace fs = std::filesystem;
    std::string file = fs::is_directory(path) ? (fs::path(path) / "manifest.json").string() : path;
    require(fs::exists(file), file + ": not found (prepare the directory with `diloco prepare`)");
    std::string text = read_file(file);
    try {
        Manifest m = from_json(json::parse(text));
        m.dir = fs::path(file).parent_path().string();
        if (m.dir.empty()) m.dir = ".";
        return m;
    } catch (const json::exception& e) {
        throw Error(file + ": bad manifest (" + e.what() + ")");
    } catch (const Error& e) {
        throw Error(file + ": bad manifest (" + e.what() + ")");
    }
}

}  // namespace diloco
