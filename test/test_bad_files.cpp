// Mutated files, format by format: each mutation of a valid file (cut short, wrong magic,
// overlapping offsets, wrong types, a FIFO, a /dev/zero link, a loop of links) must be refused
// with a one-line Error naming the file, never read as good, never hang or exhaust memory.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "data/manifest.h"
#include "data/prepare.h"
#include "data/shard.h"
#include "data/shard_data.h"
#include "data/tokenizer.h"
#include "model/checkpoint.h"
#include "test/data_helpers.h"
#include "test/helpers.h"
#include "test/skip.h"
#include "util/error.h"
#include "util/files.h"
#include "util/safetensors.h"

using namespace diloco;
using diloco::test::TempDir;
using json = nlohmann::json;

namespace {

// Runs load and requires an Error of one line that names file and, when given, holds `what`.
void require_refused(const std::function<void()>& load, const std::string& file,
                     const std::string& what, const std::string& mutation) {
    INFO("mutation: " << mutation);
    try {
        load();
    } catch (const Error& e) {
        const std::string message = e.what();
        INFO("message: " << message);
        CHECK(message.find(file) != std::string::npos);
        CHECK(message.find(what) != std::string::npos);
        CHECK(message.find('\n') == std::string::npos);
        CHECK(message.find("json.exception") == std::string::npos);
        return;
    }
    FAIL_CHECK("accepted");
}

// The kinds of file that are no file to read, put at path in turn (path restored after each):
// a FIFO, a link to /dev/zero, a loop of links, a directory, a file cut to nothing.
void require_special_files_refused(const std::string& path, const std::function<void()>& load) {
    namespace fs = std::filesystem;
    const std::string good = read_file(path);
    auto restore = [&] {
        fs::remove_all(path);
        fs::remove(path + ".loop");
        write_file_atomic(path, good);
    };
    fs::remove(path);
    REQUIRE(::mkfifo(path.c_str(), 0644) == 0);
    require_refused(load, path, "is a FIFO (named pipe), expected a regular file", "FIFO");
    fs::remove(path);
    fs::create_symlink("/dev/zero", path);
    require_refused(load, path, "is a character device, expected a regular file", "/dev/zero");
    fs::remove(path);
    fs::create_symlink(path + ".loop", path);
    fs::create_symlink(path, path + ".loop");
    require_refused(load, path, "a loop of symbolic links", "link loop");
    restore();
    fs::remove(path);
    fs::create_directory(path);
    require_refused(load, path, "", "directory");
    restore();
    write_file_atomic(path, "");
    require_refused(load, path, "", "empty");
    restore();
    load();  // and the file as it was still loads
}

// A small model saved as ours: config.json and model.safetensors in dir.
GptConfig save_small_model(const std::string& dir) {
    GptConfig c = gpt_config(70, 4, 1, 2, 4);
    std::vector<float> params(build_layout(c).total);
    for (size_t i = 0; i < params.size(); i++) params[i] = 0.01f * float(i % 17);
    save_model(dir, c, params, {});
    return c;
}

// A safetensors file written by hand (no CRC, as Hugging Face writes them) from a header and
// the number of data bytes that follow it.
std::string safetensors_bytes(const json& header, size_t data_bytes) {
    const std::string text = header.dump();
    const uint64_t length = text.size();
    std::string file(reinterpret_cast<const char*>(&length), 8);
    return file + text + std::string(data_bytes, '\1');
}

json tensor(const std::string& dtype, std::vector<int64_t> shape, size_t begin, size_t end) {
    return {{"dtype", dtype}, {"shape", shape}, {"data_offsets", {begin, end}}};
}

}  // namespace

TEST_CASE("files that are no regular file are refused by every reader, by name", "[bad-files]") {
    TempDir dir;
    save_small_model(dir.file("ck"));
    for (const char* name : {"config.json", "model.safetensors"})
        require_special_files_refused(dir.file(std::string("ck/") + name),
                                      [&] { load_model(dir.file("ck")); });

    test::small_tokenizer(dir.file("tok"));
    for (const char* name : {"encoder.json", "vocab.bpe"})
        require_special_files_refused(dir.file(std::string("tok/") + name),
                                      [&] { Tokenizer::load(dir.file("tok")); });

    Manifest m;
    m.dir = dir.file("data");
    std::filesystem::create_directories(m.dir);
    m.tokenizer = "t", m.field = "text", m.split = "iid", m.vocab = 300, m.islands = 1;
    m.shard_tokens = 100;
    for (const char* name : {"train.bin", "val.bin"}) {
        ShardWriter w(m.shard_path(name), m.vocab);
        std::vector<int32_t> ids(100, 7);
        w.append(ids.data(), ids.size());
        w.finish();
    }
    m.train = {{1, 100, {"train.bin"}}};
    m.val = {1, 100, {"val.bin"}};
    write_manifest(m);
    for (const char* name : {"manifest.json", "train.bin"})
        require_special_files_refused(m.dir + "/" + name, [&] {
            ShardData::open(m.dir, {0, 1, 8, 0.1});
        });
}

TEST_CASE("a loop of links as the checkpoint or the manifest directory is named", "[bad-files]") {
    TempDir dir;
    std::filesystem::create_symlink(dir.file("b"), dir.file("a"));
    std::filesystem::create_symlink(dir.file("a"), dir.file("b"));
    CHECK_THROWS_WITH(load_model(dir.file("a")),
                      Catch::Contains(dir.file("a") + ": a loop of symbolic links"));
    CHECK_THROWS_WITH(read_manifest(dir.file("a")),
                      Catch::Contains(dir.file("a") + ": a loop of symbolic links"));
    CHECK_THROWS_WITH(Tokenizer::load(dir.file("a")),
                      Catch::Contains(dir.file("a") + ": a loop of symbolic links"));
    PrepareOptions o;  // and as prepare's output
    test::small_tokenizer(dir.file("tok"));
    test::write_text(dir.file("in.jsonl"), test::jsonl({"one document", "another"}));
    o.inputs = {dir.file("in.jsonl")}, o.tokenizer = dir.file("tok"), o.out = dir.file("a");
    CHECK_THROWS_WITH(prepare(o, [](const PrepareProgress&) {}),
                      Catch::Contains(dir.file("a") + ": a loop of symbolic links"));
}

TEST_CASE("mutated safetensors files are refused", "[bad-files]") {
    TempDir dir;
    const std::string path = dir.file("m.safetensors");
    // Two F32 tensors of 3 and 2 values: data bytes [0, 12) and [12, 20).
    const json good = {{"a", tensor("F32", {3}, 0, 12)}, {"b", tensor("F32", {2}, 12, 20)}};
    write_file_atomic(path, safetensors_bytes(good, 20));
    REQUIRE(SafetensorsFile::read(path).entries().size() == 2);
    const std::string valid = read_file(path);

    auto with_header = [&](std::function<void(json&)> change, size_t data_bytes = 20) {
        json h = good;
        change(h);
        return safetensors_bytes(h, data_bytes);
    };
    std::string wrong_magic = valid;
    wrong_magic[7] = '\x40';  // a header length of 2^62
    std::string huge_header = valid;
    const uint64_t length = 200'000'000;
    std::memcpy(huge_header.data(), &length, 8);
    const std::vector<std::tuple<std::string, std::string, std::string>> mutations = {
        {"empty", "", "no header"},
        {"7 bytes", valid.substr(0, 7), "no header"},
        {"header cut", valid.substr(0, 20), "exceeds file size"},
        {"data cut", valid.substr(0, valid.size() - 1), "truncated"},
        {"data cut to none", valid.substr(0, valid.size() - 20), "truncated"},
        {"trailing bytes", valid + "xyz", "3 trailing bytes"},
        {"wrong magic", wrong_magic, "header length"},
        {"header over the limit", huge_header, "over the format's limit"},
        {"not JSON", safetensors_bytes(json("x"), 0).replace(8, 3, "{x:"),
         "malformed JSON at byte"},
        {"overlapping offsets",
         with_header([](json& h) { h["b"] = tensor("F32", {2}, 8, 16); }, 16),
         "tensor 'b' (data_offsets [8, 16]) overlaps tensor 'a'"},
        {"same offsets", with_header([](json& h) { h["b"] = tensor("F32", {3}, 0, 12); }, 12),
         "overlaps"},
        {"a hole", with_header([](json& h) { h["b"] = tensor("F32", {2}, 16, 24); }, 24),
         "leaves bytes 12..16 of the data unused"},
        {"not from 0", with_header([](json& h) { h["a"] = tensor("F32", {3}, 4, 16); }, 24),
         "unused"},
        {"size not shape x dtype", with_header([](json& h) { h["a"]["shape"] = {4}; }),
         "data_offsets do not match dtype and shape [4]"},
        {"dtype of another size", with_header([](json& h) { h["a"]["dtype"] = "F16"; }),
         "do not match dtype"},
        {"unknown dtype", with_header([](json& h) { h["a"]["dtype"] = "F31"; }),
         "unknown dtype F31"},
        {"negative shape", with_header([](json& h) { h["a"]["shape"] = {-3}; }), "negative"},
        {"shape of text", with_header([](json& h) { h["a"]["shape"] = "3"; }), "not an array"},
        {"offsets of text", with_header([](json& h) {
             h["a"]["data_offsets"] = {"0", "12"};
         }),
         "data_offsets"},
        {"end before begin", with_header([](json& h) {
             h["a"]["data_offsets"] = {12, 0};
         }),
         "data_offsets"},
        {"no dtype", with_header([](json& h) { h["a"].erase("dtype"); }), "needs dtype"},
        {"metadata not text", with_header([](json& h) {
             h["__metadata__"] = {{"k", 1}};
         }),
         "metadata 'k' is not a string"},
        {"header an array", safetensors_bytes(json::array(), 0), "not a JSON object"},
    };
    for (const auto& [name, bytes, what] : mutations) {
        write_file_atomic(path, bytes);
        require_refused([&] { SafetensorsFile::read(path); }, path, what, name);
    }
    // The data section read back must be that of our writer: a flipped byte fails the CRC.
    std::vector<float> values = {1, 2, 3};
    write_safetensors(path, {{"x", {3}, values.data()}}, {});
    std::string flipped = read_file(path);
    flipped.back() ^= 1;
    write_file_atomic(path, flipped);
    require_refused([&] { SafetensorsFile::read(path); }, path, "CRC-32", "flipped data byte");
}

TEST_CASE("mutated config.json files are refused, naming the field", "[bad-files]") {
    TempDir dir;
    save_small_model(dir.path());
    const std::string path = dir.file("config.json");
    const json good = json::parse(read_file(path));
    auto with = [&](const std::string& key, const json& value) {
        json j = good;
        if (value.is_discarded())
            j.erase(key);
        else
            j[key] = value;
        return j.dump();
    };
    const json gone(json::value_t::discarded);
    const std::vector<std::tuple<std::string, std::string, std::string>> mutations = {
        {"model_type llama", with("model_type", "llama"),
         "field \"model_type\" is \"llama\", expected \"gpt2\""},
        {"no model_type", with("model_type", gone), "field \"model_type\" is missing"},
        {"model_type a number", with("model_type", 2), "\"model_type\" must be a string"},
        {"bos 1e6", with("bos_token_id", 1e6), "\"bos_token_id\" must be a whole number in 0..69"},
        {"bos 1000000", with("bos_token_id", 1000000), "found 1000000"},
        {"eos -1", with("eos_token_id", -1), "\"eos_token_id\" must be a whole number in 0..69"},
        {"eos 70", with("eos_token_id", 70), "\"eos_token_id\""},
        {"n_layer text", with("n_layer", "1"), "\"n_layer\" must be a whole number"},
        {"n_layer 1.5", with("n_layer", 1.5), "\"n_layer\" must be a whole number"},
        {"n_head 0", with("n_head", 0), "\"n_head\" must be a whole number in 1..4"},
        {"n_head 3", with("n_head", 3), "heads = 3 does not divide channels = 4"},
        {"vocab null", with("vocab_size", nullptr), "\"vocab_size\""},
        {"no n_embd", with("n_embd", gone), "field \"n_embd\" is missing"},
        {"padded below vocab", with("diloco_padded_vocab", 69), "\"diloco_padded_vocab\""},
        {"dropout text", with("resid_pdrop", "0"), "\"resid_pdrop\" must be a number in 0"},
        {"dropout 2", with("attn_pdrop", 2), "\"attn_pdrop\" must be a number in 0"},
        {"epsilon text", with("layer_norm_epsilon", "1e-5"), "\"layer_norm_epsilon\""},
        {"epsilon 1e-6", with("layer_norm_epsilon", 1e-6), "layer_norm_epsilon = "},
        {"tie text", with("tie_word_embeddings", "true"),
         "\"tie_word_embeddings\" must be true or false"},
        {"untied", with("tie_word_embeddings", false), "tie_word_embeddings = false"},
        {"cross attention", with("add_cross_attention", true), "add_cross_attention = true"},
        {"architectures text", with("architectures", "GPT2LMHeadModel"),
         "\"architectures\" must be an array of strings"},
        {"activation a number", with("activation_function", 1), "\"activation_function\""},
        {"n_ctx 0", with("n_ctx", 0), "\"n_ctx\""},
        {"cut short", good.dump().substr(0, 40), "malformed JSON at byte"},
        {"an array", "[1, 2]", "expected a JSON object"},
        {"empty", "", "empty, expected JSON"},
        {"not UTF-8", "{\"model_type\": \"gpt\xff\"}", "malformed JSON at byte"},
    };
    for (const auto& [name, text, what] : mutations) {
        write_file_atomic(path, text);
        require_refused([&] { load_model(dir.path()); }, path, what, name);
    }
}

TEST_CASE("mutated manifests are refused, naming the field", "[bad-files]") {
    TempDir dir;
    Manifest m;
    m.dir = dir.path();
    m.tokenizer = "t", m.field = "text", m.split = "iid", m.vocab = 300, m.eot = 299;
    m.islands = 2, m.shard_tokens = 50;
    auto shard = [&](const std::string& name, size_t n) {
        ShardWriter w(m.shard_path(name), m.vocab);
        std::vector<int32_t> ids(n, 5);
        w.append(ids.data(), ids.size());
        w.finish();
    };
    shard("t0.bin", 50), shard("t1.bin", 40), shard("v.bin", 30);
    m.train = {{2, 50, {"t0.bin"}}, {1, 40, {"t1.bin"}}};
    m.val = {1, 30, {"v.bin"}};
    write_manifest(m);
    const std::string path = m.path();
    auto open = [&] { ShardData::open(dir.path(), {1, 2, 8, 0.1}); };
    open();
    const json good = json::parse(read_file(path));
    auto with = [&](const std::string& pointer, const json& value) {
        json j = good;
        j[json::json_pointer(pointer)] = value;
        return j.dump();
    };
    const std::vector<std::tuple<std::string, std::string, std::string>> mutations = {
        {"token_bytes 0", with("/token_bytes", 0),
         "\"token_bytes\" must be a whole number in 2..4"},
        {"token_bytes 1", with("/token_bytes", 1),
         "\"token_bytes\" must be a whole number in 2..4"},
        {"token_bytes 3", with("/token_bytes", 3), "\"token_bytes\" is 3, but ids of a vocabulary"},
        {"token_bytes 4", with("/token_bytes", 4), "\"token_bytes\" is 4, but ids of a vocabulary"},
        {"island 5 of 2", with("/train/1/island", 5),
         "train[1]: field \"island\" must be a whole number in 1..1, found 5"},
        {"islands 3", with("/islands", 3), "\"train\" must list the 3 island(s)"},
        {"no island", with("/train/0", {{"documents", 2}, {"tokens", 50}, {"shards", {"t0.bin"}}}),
         "train[0]: field \"island\" is missing"},
        {"more documents than tokens", with("/train/0/documents", 51), "51 documents in 50 tokens"},
        {"tokens off the shards", with("/train/1/tokens", 41), "lists 41 training tokens"},
        {"val tokens off", with("/val/tokens", 29), "lists 29 validation tokens"},
        {"tokens in no shard", with("/val/shards", json::array()), "30 tokens in no shard"},
        {"shard out of the directory", with("/train/0/shards/0", "../t0.bin"),
         "train[0]: shards[0] must be a file name in the manifest's directory"},
        {"shard a number", with("/train/0/shards/0", 7), "shards[0] must be a file name"},
        {"shards not a list", with("/val/shards", "v.bin"), "\"shards\" must be an array"},
        {"shard larger than shard_tokens", with("/shard_tokens", 35),
         "40 tokens, more than the 35"},
        {"shard_tokens 0", with("/shard_tokens", 0), "\"shard_tokens\" must be at least 1"},
        {"eot past the vocabulary", with("/tokenizer/eot", 300), "\"eot\" must be a whole number"},
        {"vocab 0", with("/tokenizer/vocab", 0), "\"vocab\" must be a whole number in 1.."},
        {"vocab 200", with("/tokenizer/vocab", 200), "\"eot\" must be a whole number in 0..199"},
        {"vocab off the shards", with("/tokenizer/vocab", 400), "vocabulary 300 in the header"},
        {"format", with("/format", "shards"), "\"format\" is \"shards\""},
        {"version 2", with("/version", 2), "\"version\" must be a whole number in 1..1"},
        {"split", with("/split", "random"), "field \"split\": unknown split 'random'"},
        {"seed -1", with("/seed", -1), "\"seed\" must be a whole number"},
        {"inputs text", with("/inputs", "a.jsonl"), "\"inputs\" must be an array of strings"},
        {"tokenizer text", with("/tokenizer", "gpt2"), "\"tokenizer\" must be an object"},
        {"cut short", good.dump().substr(0, 100), "malformed JSON at byte"},
        {"empty", "", "empty, expected JSON"},
    };
    for (const auto& [name, text, what] : mutations) {
        write_file_atomic(path, text);
        require_refused(open, path, what, name);
    }
}

TEST_CASE("mutated shard files are refused", "[bad-files]") {
    TempDir dir;
    const std::string path = dir.file("s.bin");
    ShardWriter w(path, 300);
    std::vector<int32_t> ids = {1, 2, 3, 299};
    w.append(ids.data(), ids.size());
    w.finish();
    const std::string good = read_file(path);
    auto word = [&](int index, int32_t value) {
        std::string s = good;
        std::memcpy(s.data() + 4 * index, &value, 4);
        return s;
    };
    std::string big_id = good;
    big_id[kShardHeaderBytes + 6] = '\x2c', big_id[kShardHeaderBytes + 7] = '\x01';  // id 300
    const std::vector<std::tuple<std::string, std::string, std::string>> mutations = {
        {"wrong magic", word(0, 20240521), "bad magic 20240521"},
        {"version 3", word(1, 3), "unsupported shard version 3"},
        {"count past the file", word(2, 5), "(truncated)"},
        {"count short of the file", word(2, 3), "(trailing bytes)"},
        {"negative count", word(2, -1), "negative token count"},
        {"negative vocabulary", word(3, -300), "negative vocabulary size"},
        {"header cut", good.substr(0, 100), "shorter than the 1024-byte shard header"},
        {"tokens cut", good.substr(0, good.size() - 1), "(truncated)"},
        {"id past the vocabulary", big_id, "token 3 (byte offset 1030) is 300"},
    };
    for (const auto& [name, bytes, what] : mutations) {
        write_file_atomic(path, bytes);
        require_refused([&] { ShardFile shard(path); }, path, what, name);
    }
}

namespace {

// The merges of vocab.bpe text (after its version line), one per line.
std::vector<std::string> merge_lines(const std::string& bpe) {
    std::vector<std::string> lines;
    for (size_t pos = bpe.find('\n') + 1, end; pos < bpe.size(); pos = end + 1) {
        end = std::min(bpe.find('\n', pos), bpe.size());
        if (end > pos) lines.push_back(bpe.substr(pos, end - pos));
    }
    return lines;
}

std::string bpe_text(const std::vector<std::string>& lines) {
    std::string text = "#version: 0.2\n";
    for (const std::string& l : lines) text += l + "\n";
    return text;
}

// vocab.bpe mutations that still name tokens of encoder.json, each with what its error says:
// cut short, the ranks reversed, two ranks swapped, a merge left out, a merge repeated.
void require_reordered_merges_refused(const std::string& dir) {
    const std::string bpe = dir + "/vocab.bpe";
    const std::string good = read_file(bpe);
    const std::vector<std::string> lines = merge_lines(good);
    REQUIRE(lines.size() > 20);
    auto mutated = [&](const std::function<void(std::vector<std::string>&)> change) {
        std::vector<std::string> l = lines;
        change(l);
        return bpe_text(l);
    };
    using L = std::vector<std::string>;
    const std::vector<std::tuple<std::string, std::string, std::string>> mutations = {
        {"cut by 10 merges", mutated([](L& l) { l.resize(l.size() - 10); }),
         "is the file cut short?"},
        {"cut by 1 merge", mutated([](L& l) { l.pop_back(); }), "is the file cut short?"},
        {"cut inside a line", good.substr(0, good.size() - 3), ""},
        {"reversed", mutated([](L& l) { std::reverse(l.begin(), l.end()); }), "out of order"},
        {"two swapped", mutated([](L& l) { std::swap(l[3], l[10]); }), "out of order"},
        {"last two swapped", mutated([](L& l) { std::swap(l[l.size() - 2], l.back()); }),
         "out of order"},
        {"one left out", mutated([](L& l) { l.erase(l.begin() + 5); }), ""},
        {"one repeated", mutated([](L& l) { l.push_back(l[7]); }), "already makes"},
        {"first line", "#version: 0.3\n" + good.substr(good.find('\n') + 1), "#version: 0.2"},
        {"empty", "", "expected \"#version: 0.2\""},
    };
    for (const auto& [name, text, what] : mutations) {
        write_file_atomic(bpe, text);
        require_refused([&] { Tokenizer::load(dir); }, bpe, what, name);
    }
    write_file_atomic(bpe, good);
}

}  // namespace

TEST_CASE("a vocab.bpe cut short or reordered is refused (trained tokenizer)", "[bad-files]") {
    TempDir dir;
    Tokenizer trained = test::small_tokenizer(dir.path());
    CHECK(Tokenizer::load(dir.path()).merges() == trained.merges());
    require_reordered_merges_refused(dir.path());

    // encoder.json: ids and names must be a vocabulary.
    const std::string enc = dir.file("encoder.json");
    const json good = json::parse(read_file(enc));
    auto with = [&](const std::string& key, const json& value) {
        json j = good;
        j[key] = value;
        return j.dump();
    };
    const std::vector<std::tuple<std::string, std::string, std::string>> mutations = {
        {"id twice", with("<|endoftext|>", 0), "ids must be 0, 1, ..., n - 1"},
        {"id past the end", with("<|endoftext|>", 300), "ids must be 0, 1, ..., n - 1"},
        {"id text", with("<|endoftext|>", "299"), "has id \"299\""},
        {"cut short", good.dump().substr(0, 200), "malformed JSON at byte"},
        {"an array", "[]", "not a JSON object"},
        {"empty", "", "empty, expected JSON"},
    };
    for (const auto& [name, text, what] : mutations) {
        write_file_atomic(enc, text);
        require_refused([&] { Tokenizer::load(dir.path()); }, enc, what, name);
    }
}

TEST_CASE("GPT-2's vocab.bpe passes the merge order; cut short or reordered it is refused",
          "[bad-files]") {
    TempDir dir;
    std::filesystem::copy_file(test::shared_data("gpt2/encoder.json"), dir.file("encoder.json"));
    std::filesystem::copy_file(test::shared_data("gpt2/vocab.bpe"), dir.file("vocab.bpe"));
    REQUIRE(Tokenizer::load(dir.path()).encode("Hello world") == std::vector<int32_t>{15496, 995});
    require_reordered_merges_refused(dir.path());
}

TEST_CASE("a tokenizer.json with merges out of order is refused", "[bad-files]") {
    TempDir dir;
    test::small_tokenizer(dir.path());
    const json vocab = json::parse(read_file(dir.file("encoder.json")));
    const std::vector<std::string> lines = merge_lines(read_file(dir.file("vocab.bpe")));
    auto doc = [&](const std::vector<std::string>& merges) {
        return json{{"added_tokens", {{{"id", 299}, {"content", "<|endoftext|>"}}}},
                    {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}}}
            .dump();
    };
    const std::string path = dir.file("tokenizer.json");
    write_file_atomic(path, doc(lines));
    REQUIRE(Tokenizer::load(path).vocab_size() == 300);
    std::vector<std::string> reversed(lines.rbegin(), lines.rend());
    std::vector<std::string> cut(lines.begin(), lines.end() - 1);
    const std::vector<std::tuple<std::string, std::string, std::string>> mutations = {
        {"reversed", doc(reversed), "out of order"},
        {"cut short", doc(cut), "is the file cut short?"},
        {"text cut", doc(lines).substr(0, 300), "malformed JSON at byte"},
    };
    for (const auto& [name, text, what] : mutations) {
        write_file_atomic(path, text);
        require_refused([&] { Tokenizer::load(path); }, path, what, name);
    }
}

namespace {

// Exit 1 and one line on stderr that holds needle, never an internal error.
void check_cli_refusal(const test::CliResult& r, const std::string& needle) {
    INFO("stderr: " << r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.err.find(needle) != std::string::npos);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK(r.err.find("internal error") == std::string::npos);
}

}  // namespace

TEST_CASE("diloco eval refuses a FIFO, a /dev/zero link and a link loop in one line",
          "[bad-files][cli]") {
    namespace fs = std::filesystem;
    TempDir dir;
    save_small_model(dir.file("ck"));
    write_file_atomic(dir.file("d.txt"), test::synthetic_text(2000, 3));
    // timeout: a reader that blocked on the FIFO would fail the test instead of hanging it.
    auto eval = [&] {
        return test::run_command("timeout 60 " + std::string(DILOCO_BINARY) +
                                 " eval --checkpoint " + dir.file("ck") + " --data " +
                                 dir.file("d.txt"));
    };
    const std::string weights = dir.file("ck/model.safetensors");
    const std::string good = read_file(weights);
    fs::remove(weights);
    REQUIRE(::mkfifo(weights.c_str(), 0644) == 0);
    check_cli_refusal(eval(), weights + ": is a FIFO (named pipe), expected a regular file");
    fs::remove(weights);
    fs::create_symlink("/dev/zero", weights);
    check_cli_refusal(eval(), weights + ": is a character device, expected a regular file");
    fs::remove(weights);
    write_file_atomic(weights, good);

    const std::string config = dir.file("ck/config.json");
    fs::rename(config, dir.file("config.kept"));
    fs::create_symlink(config + ".loop", config);
    fs::create_symlink(config, config + ".loop");
    check_cli_refusal(eval(), config + ": a loop of symbolic links");

    // The TOML run config of train and plan, read by the same helper.
    const std::string toml = dir.file("run.toml");
    REQUIRE(::mkfifo(toml.c_str(), 0644) == 0);
    const std::string plan = "timeout 60 " + std::string(DILOCO_BINARY) + " plan --config ";
    check_cli_refusal(test::run_command(plan + toml),
                      toml + ": is a FIFO (named pipe), expected a regular file");
    fs::remove(toml);
    fs::create_symlink(toml, toml);
    check_cli_refusal(test::run_command(plan + toml), toml + ": a loop of symbolic links");
}

TEST_CASE("files issue 25 found accepted now fail at the command line", "[bad-files][cli]") {
    TempDir dir;
    const GptConfig c = save_small_model(dir.file("ck"));
    Manifest m;  // a prepared directory of the model's vocabulary
    m.dir = dir.file("data");
    std::filesystem::create_directories(m.dir);
    m.tokenizer = "t", m.field = "text", m.split = "iid", m.vocab = c.vocab, m.eot = c.vocab - 1;
    m.shard_tokens = 200;
    for (const char* name : {"train.bin", "val.bin"}) {
        ShardWriter w(m.shard_path(name), m.vocab);
        std::vector<int32_t> ids(200, 7);
        w.append(ids.data(), ids.size());
        w.finish();
    }
    m.train = {{1, 200, {"train.bin"}}};
    m.val = {1, 200, {"val.bin"}};
    write_manifest(m);
    const std::string eval = std::string(DILOCO_BINARY) + " eval --checkpoint " + dir.file("ck") +
                             " --data " + m.dir + " --json";
    REQUIRE(test::run_command(eval).exit_code == 0);

    json manifest = json::parse(read_file(m.path()));
    manifest["token_bytes"] = 3;
    write_file_atomic(m.path(), manifest.dump());
    check_cli_refusal(test::run_command(eval), m.path() + ": field \"token_bytes\" is 3");
    write_manifest(m);

    const std::string config = dir.file("ck/config.json");
    const json good = json::parse(read_file(config));
    for (const auto& [key, value] : std::vector<std::pair<std::string, json>>{
             {"model_type", "llama"}, {"bos_token_id", 1e6}}) {
        json j = good;
        j[key] = value;
        write_file_atomic(config, j.dump());
        check_cli_refusal(test::run_command(eval), config + ": field \"" + key + "\"");
    }
    write_file_atomic(config, good.dump());

    test::small_tokenizer(dir.file("tok"));
    const std::string bpe = dir.file("tok/vocab.bpe");
    std::vector<std::string> lines = merge_lines(read_file(bpe));
    std::reverse(lines.begin(), lines.end());
    write_file_atomic(bpe, bpe_text(lines));
    check_cli_refusal(
        test::run_command(std::string(DILOCO_BINARY) + " tokenizer encode --tokenizer " +
                          dir.file("tok") + " < /dev/null"),
        bpe + ":2: ");
}
