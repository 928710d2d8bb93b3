// Readers against bad files, each case found by fuzzing (fuzz/) or by trying what a user might:
// sizes checked before allocation, numbers out of range, NaN and Inf refused, no leftovers.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "data/manifest.h"
#include "data/prepare.h"
#include "data/tokenizer.h"
#include "model/checkpoint.h"
#include "test/data_helpers.h"
#include "test/helpers.h"
#include "util/error.h"
#include "util/files.h"
#include "util/safetensors.h"

using namespace diloco;
using Catch::Matchers::Contains;
using diloco::test::TempDir;

namespace {

GptConfig small_config() { return gpt_config(70, 4, 1, 2, 4); }

// A valid checkpoint of small_config() in dir; returns its config.json as JSON.
nlohmann::json save_small(const std::string& dir) {
    GptConfig c = small_config();
    save_model(dir, c, std::vector<float>(build_layout(c).total, 0.5f), {});
    return nlohmann::json::parse(read_file(dir + "/config.json"));
}

void write_json(const std::string& path, const nlohmann::json& j) {
    write_file_atomic(path, j.dump());
}

// A safetensors file written by hand (no CRC, as Hugging Face writes them) holding one F32
// tensor "x" with these values.
void write_plain_safetensors(const std::string& path, const std::vector<float>& values) {
    nlohmann::json header = {{"x",
                              {{"dtype", "F32"},
                               {"shape", {values.size()}},
                               {"data_offsets", {0, values.size() * sizeof(float)}}}}};
    const std::string json = header.dump();
    const uint64_t length = json.size();
    std::string file(reinterpret_cast<const char*>(&length), 8);
    file += json;
    file.append(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
    write_file_atomic(path, file);
}

}  // namespace

TEST_CASE("config.json sizes past the limits are refused before anything is allocated",
          "[bad-input]") {
    TempDir dir;
    const nlohmann::json good = save_small(dir.path());
    const std::string path = dir.file("config.json");
    const std::vector<std::tuple<const char*, int64_t, const char*>> cases = {
        {"n_layer", 1000000, "\"n_layer\" must be a whole number in 1..1024, found 1000000"},
        {"n_positions", 2147483647, "\"n_positions\" must be a whole number in 1..1048576"},
        {"n_embd", 1000000, "\"n_embd\" must be a whole number in 1..65536, found 1000000"},
        {"vocab_size", 2147483600, "\"vocab_size\" must be a whole number in 1..16777216"},
        {"n_head", 8, "\"n_head\" must be a whole number in 1..4, found 8"},
        {"n_layer", int64_t(1) << 32, "\"n_layer\" must be a whole number in 1..1024"},
        {"n_embd", -(int64_t(1) << 33), "\"n_embd\" must be a whole number in 1..65536"},
    };
    for (const auto& [key, value, message] : cases) {
        nlohmann::json j = good;
        j[key] = value;
        write_json(path, j);
        INFO(key << " = " << value);
        CHECK_THROWS_WITH(load_model(dir.path()), Contains(path) && Contains(message));
    }
    // Without our padded size it is computed from the vocabulary, which once overflowed an int.
    nlohmann::json j = good;
    j.erase("diloco_padded_vocab");
    j["vocab_size"] = 2147483600;
    write_json(path, j);
    CHECK_THROWS_WITH(load_model(dir.path()),
                      Contains(path + ": field \"vocab_size\" must be a whole number in "
                                      "1..16777216, found 2147483600"));
}

TEST_CASE("a config larger than its tensors fails on the tensor shapes, not on memory",
          "[bad-input]") {
    TempDir dir;
    nlohmann::json j = save_small(dir.path());
    j["n_positions"] = 1 << 20;  // 16 MiB of positions the file does not hold
    write_json(dir.file("config.json"), j);
    CHECK_THROWS_WITH(load_model(dir.path()),
                      Contains("model.safetensors: tensor 'wpe.weight' has shape [4,4], "
                               "expected [1048576,4]"));
}

TEST_CASE("NaN and Inf are refused when tensors are read and when they are saved",
          "[bad-input]") {
    TempDir dir;
    write_plain_safetensors(dir.file("a.safetensors"), {1.0f, NAN, 2.0f});
    std::vector<float> out(3);
    SafetensorsFile file = SafetensorsFile::read(dir.file("a.safetensors"));
    CHECK_THROWS_WITH(file.read_f32("x", {3}, out.data()),
                      Contains("a.safetensors: tensor 'x' holds nan at index 1"));
    std::vector<float> inf = {0.0f, 0.0f, -INFINITY};
    CHECK_THROWS_WITH(write_safetensors(dir.file("b.safetensors"), {{"y", {3}, inf.data()}}, {}),
                      Contains("b.safetensors: refusing to save tensor 'y': it holds -inf at "
                               "index 2"));
    CHECK_FALSE(std::filesystem::exists(dir.file("b.safetensors")));
}

TEST_CASE("a safetensors shape whose size overflows 64 bits is refused", "[bad-input]") {
    TempDir dir;
    // 2^62 x 4 x 4 bytes wraps to 0 in 64 bits: with data_offsets [0, 0] it once passed.
    const std::string json =
        R"({"x": {"dtype": "F32", "shape": [4611686018427387904, 4], "data_offsets": [0, 0]}})";
    const uint64_t length = json.size();
    write_file_atomic(dir.file("a.safetensors"),
                      std::string(reinterpret_cast<const char*>(&length), 8) + json);
    CHECK_THROWS_WITH(SafetensorsFile::read(dir.file("a.safetensors")),
                      Contains("shape entry 4611686018427387904 makes the tensor too large"));
}

TEST_CASE("a tokenizer file with a number out of range is a clear error", "[bad-input]") {
    TempDir dir;
    test::write_text(dir.file("encoder.json"), R"({"a": 1e400})");
    test::write_text(dir.file("vocab.bpe"), "#version: 0.2\n");
    CHECK_THROWS_AS(Tokenizer::load(dir.path()), Error);
    CHECK_THROWS_WITH(Tokenizer::load(dir.path()),
                      Contains("encoder.json: malformed JSON") && Contains("1e400"));
    test::write_text(dir.file("t.json"), R"({"model": {"vocab": {"a": -1e999}}})");
    CHECK_THROWS_WITH(Tokenizer::load_hf(dir.file("t.json")), Contains("t.json: malformed JSON"));
}

TEST_CASE("a vocab.bpe line that is not UTF-8 is named in a clear error", "[bad-input]") {
    // Found by fuzzing: quoting the bad line for the message threw nlohmann's type_error.
    TempDir dir;
    test::small_tokenizer(dir.path());
    test::write_text(dir.file("vocab.bpe"), "#version: 0.2\n\xff\xfe x\n");
    CHECK_THROWS_WITH(Tokenizer::load(dir.path()),
                      Contains("vocab.bpe:2: unknown token \"\xef\xbf\xbd\xef\xbf\xbd\""));
    test::write_text(dir.file("vocab.bpe"), "#version: \xff\n");
    CHECK_THROWS_WITH(Tokenizer::load(dir.path()), Contains("vocab.bpe: first line is"));
}

TEST_CASE("manifest numbers must be whole and in range", "[bad-input]") {
    TempDir dir;
    Manifest m;
    m.dir = dir.path();
    m.tokenizer = "t", m.field = "text", m.split = "iid", m.vocab = 300, m.islands = 1;
    m.shard_tokens = 10;
    m.train = {{1, 10, {"a.bin"}}};
    write_manifest(m);
    const nlohmann::json good = nlohmann::json::parse(read_file(m.path()));
    REQUIRE(read_manifest(m.path()).vocab == 300);
    auto with = [&](const nlohmann::json::json_pointer& key, const nlohmann::json& value) {
        nlohmann::json j = good;
        j[key] = value;
        write_json(m.path(), j);
    };
    with("/tokenizer/vocab"_json_pointer, 300.7);
    CHECK_THROWS_WITH(read_manifest(m.path()),
                      Contains("manifest.json: tokenizer: field \"vocab\" must be a whole "
                               "number in 1..2147483647, found 300.7"));
    with("/islands"_json_pointer, int64_t(1) << 32);
    CHECK_THROWS_WITH(read_manifest(m.path()),
                      Contains("field \"islands\" must be a whole number in 1..65536, found "
                               "4294967296"));
    with("/train/0/tokens"_json_pointer, -5);
    CHECK_THROWS_WITH(read_manifest(m.path()),
                      Contains("manifest.json: train[0]: field \"tokens\" must be a whole "
                               "number in 0..18446744073709551615, found -5"));
}

TEST_CASE("a prepare that fails leaves no shards and no directory behind", "[bad-input]") {
    TempDir dir;
    test::small_tokenizer(dir.file("tok"));
    std::vector<std::string> docs;
    for (int i = 0; i < 40; i++) docs.push_back("document " + std::to_string(i) + " text");
    test::write_text(dir.file("in.jsonl"), test::jsonl(docs, {}));
    PrepareOptions o;
    o.inputs = {dir.file("in.jsonl")};
    o.tokenizer = dir.file("tok");
    o.out = dir.file("out");
    o.islands = 1000;  // more islands than documents: known only after the pass
    o.shard_tokens = 16;
    CHECK_THROWS_WITH(prepare(o, [](const PrepareProgress&) {}),
                      Contains("fewer than the 1000 island(s)"));
    CHECK_FALSE(std::filesystem::exists(o.out));
    std::filesystem::create_directories(o.out);  // a directory the user made is kept, empty
    test::write_text(o.out + "/notes.txt", "mine");
    CHECK_THROWS(prepare(o, [](const PrepareProgress&) {}));
    std::vector<std::string> left;
    for (const auto& e : std::filesystem::directory_iterator(o.out))
        left.push_back(e.path().filename().string());
    CHECK(left == std::vector<std::string>{"notes.txt"});
}
