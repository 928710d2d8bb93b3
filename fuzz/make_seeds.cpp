// Writes the fuzz harnesses' seed corpora with the project's own writers, at build time:
// make_seeds OUT_DIR fills OUT_DIR/<target>/ with small valid inputs of each kind.
#include <zlib.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "comm/codec.h"
#include "data/bpe_trainer.h"
#include "data/manifest.h"
#include "data/shard.h"
#include "fuzz/harness.h"
#include "model/checkpoint.h"
#include "util/error.h"
#include "util/files.h"
#include "util/safetensors.h"

namespace fs = std::filesystem;
using namespace diloco;

namespace {

const char* kText =
    "It's 9 o'clock; the quick brown fox jumps over the lazy dog. Caf\xc3\xa9 \xe6\x97\xa5\n"
    "  Numbers 12345 and   spaces\tand tabs, we've they'll I'm <|endoftext|> done.\n";

std::string out_dir;

void seed(const std::string& target, const std::string& name, const std::string& bytes) {
    fs::create_directories(out_dir + "/" + target);
    write_file_atomic(out_dir + "/" + target + "/" + name, bytes);
}

std::string scratch(const std::string& name) { return out_dir + "/.work/" + name; }

void safetensors_seeds() {
    std::vector<float> a = {1.0f, -2.5f, 0.0f, 3e-8f, 65504.0f, -1e30f}, b = {0.5f, 0.25f};
    write_safetensors(scratch("a.safetensors"), {{"x", {2, 3}, a.data()}, {"y", {2}, b.data()}},
                      {{"diloco_step", "12"}, {"mode", "diloco"}, {"islands", "2"}});
    seed("safetensors", "two_tensors", read_file(scratch("a.safetensors")));
    std::vector<int32_t> ids = {0, 50256, 7};
    write_safetensors(scratch("c.safetensors"), {{"ids", {3}, ids.data(), "I32"}}, {});
    seed("safetensors", "ids", read_file(scratch("c.safetensors")));
    write_safetensors(scratch("b.safetensors"), {{"adamw.m", {1}, b.data()}},
                      {{"state_version", "1"}, {"seed", "1337"}, {"adamw_steps", "4"}});
    seed("safetensors", "state", read_file(scratch("b.safetensors")));
}

void checkpoint_seeds() {
    GptConfig c;
    c.vocab = 70, c.padded_vocab = pad_vocab(70), c.max_seq = 4, c.layers = 1, c.heads = 2;
    c.channels = 4;
    std::vector<float> params(build_layout(c).total);
    for (size_t i = 0; i < params.size(); i++) params[i] = float(i % 7) * 0.01f - 0.03f;
    save_model(scratch("ck"), c, params, {{"diloco_step", "3"}});
    const std::string config = read_file(scratch("ck/config.json"));
    seed("checkpoint", "tiny", fuzz::join_parts({config, read_file(scratch("ck/model.safetensors"))}));
    seed("config_json", "tiny", config);
    seed("config_json", "gpt2",
         R"({"vocab_size": 50257, "n_positions": 1024, "n_embd": 768, "n_layer": 12,)"
         R"( "n_head": 12, "model_type": "gpt2"})");
}

void shard_seeds() {
    std::vector<int32_t> tokens = {0, 1, 299, 17, 256, 42};
    for (int vocab : {300, 70000}) {
        const std::string path = scratch("s" + std::to_string(vocab) + ".bin");
        ShardWriter w(path, vocab);
        w.append(tokens.data(), tokens.size());
        w.finish();
        seed("shard", "vocab" + std::to_string(vocab), read_file(path));
    }
}

void manifest_seeds() {
    Manifest m;
    m.dir = scratch("");
    m.inputs = {"a.jsonl.gz", "docs/"};
    m.field = "text";
    m.tokenizer = "gpt2";
    m.vocab = 50257, m.eot = 50256, m.token_bytes = 2, m.split = "iid", m.islands = 2;
    m.seed = 1337, m.shard_tokens = 1000, m.malformed_lines = 1;
    m.val = {3, 300, {"val_000000.bin"}};
    m.train = {{10, 1000, {"train_i0_000000.bin"}}, {9, 900, {"train_i1_000000.bin"}}};
    write_manifest(m);
    seed("manifest", "two_islands", read_file(m.path()));
}

std::string hf_tokenizer_json(const Tokenizer& tok, const std::string& encoder_json,
                              const std::string& vocab_bpe) {
    std::string merges;
    size_t line_start = vocab_bpe.find('\n') + 1;
    for (size_t end; (end = vocab_bpe.find('\n', line_start)) != std::string::npos;
         line_start = end + 1) {
        std::string line = vocab_bpe.substr(line_start, end - line_start);
        merges += std::string(merges.empty() ? "" : ", ") + "\"" + line + "\"";
    }
    return "{\"version\": \"1.0\", \"added_tokens\": [{\"id\": " + std::to_string(tok.eot()) +
           ", \"content\": \"<|endoftext|>\"}], \"model\": {\"type\": \"BPE\", \"vocab\": " +
           encoder_json + ", \"merges\": [" + merges + "]}}";
}

void tokenizer_seeds() {
    Tokenizer tok = train_bpe(kText, 300);
    tok.save_gpt2(scratch("tok"));
    const std::string encoder = read_file(scratch("tok/encoder.json"));
    const std::string bpe = read_file(scratch("tok/vocab.bpe"));
    seed("tokenizer_files", "trained", fuzz::join_parts({encoder, bpe, hf_tokenizer_json(tok, encoder, bpe)}));
    seed("encode", "text", kText);
    seed("encode", "bytes", std::string("\x00\xff\xc3(\xe2\x82 \xf0\x9f\x98\x80 '' 's\r\n", 19));
}

std::string gzip(const std::string& text) {
    const std::string path = scratch("g.gz");
    gzFile f = gzopen(path.c_str(), "wb");
    require(f != nullptr && gzwrite(f, text.data(), unsigned(text.size())) == int(text.size()) &&
                gzclose(f) == Z_OK,
            path + ": cannot write gzip");
    return read_file(path);
}

void json_lines_seeds() {
    const std::string lines =
        "{\"text\": \"Hello \\u00e9 world\", \"url\": \"https://a.example/x\"}\n\n"
        "{\"text\": \"second\\nline\", \"timestamp\": \"2019-04-25\"}\n"
        "not json\n{\"text\": 3}\n[1, 2]\n";
    seed("json_lines", "plain", lines);
    seed("json_lines", "gzip", gzip(lines));
}

void toml_seeds() {
    seed("toml", "tiny",
         "# a run\npreset = \"tiny\"\nsteps = 1000\nbatch = 16\nlr = 2e-3\nseed = 1337\n"
         "drop-prob = 0.25\nweight-by-tokens = true\nislands = \"host\"\n"
         "inputs = [\"a.txt\", \"b.txt\"]\n");
}

void codec_seeds() {
    std::vector<float> x(1030);
    for (size_t i = 0; i < x.size(); i++) x[i] = float(int(i % 13) - 6) * 0.37f / float(1 + i % 5);
    x[5] = 1e-40f, x[9] = 3e38f;
    for (int codec = 0; codec < 6; codec++) {
        std::string bytes(1, char(codec));
        bytes.append(reinterpret_cast<const char*>(x.data()), x.size() * sizeof(float));
        seed("codec", codec_name(Codec(codec)), bytes);
    }
    // Found by fuzzing: fewer than 4 bytes after the codec's, so no float at all (the harness
    // copied zero bytes from a null vector).
    seed("codec", "no-floats", std::string("\xff\x8b\x02", 3));
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: make_seeds OUT_DIR\n");
        return 2;
    }
    out_dir = argv[1];
    try {
        fs::create_directories(out_dir + "/.work");
        safetensors_seeds();
        checkpoint_seeds();
        shard_seeds();
        manifest_seeds();
        tokenizer_seeds();
        json_lines_seeds();
        toml_seeds();
        codec_seeds();
        fs::remove_all(out_dir + "/.work");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "make_seeds: %s\n", e.what());
        return 1;
    }
    return 0;
}
