// `diloco tokenizer`: encode (stdin text -> ids), decode (ids -> bytes) and train (a byte-level
// BPE from text or JSON lines, written as encoder.json + vocab.bpe).
#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>

#include "data/bpe_trainer.h"
#include "data/documents.h"
#include "data/tokenizer.h"
#include "tools/commands.h"
#include "tools/options.h"
#include "tools/read_report.h"
#include "util/error.h"
#include "util/format.h"
#include "util/parse.h"

namespace diloco {

namespace {

struct TokenizerOptions {
    std::string tokenizer;
    bool eot = false;
    int vocab = 0;
    std::string out;
    std::string field = "text";
    bool strict = false;
    std::vector<std::string> inputs;
};

// Blocks of 64 KiB: a character-at-a-time stream costs more than the encoding itself.
std::string read_stdin() {
    std::string text;
    char buf[1 << 16];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, stdin)) > 0;) text.append(buf, n);
    require(!std::ferror(stdin), "stdin: read error");
    return text;
}

void write_stdout(const std::string& bytes) {
    require(std::fwrite(bytes.data(), 1, bytes.size(), stdout) == bytes.size() &&
                std::fflush(stdout) == 0,
            "stdout: write failed");
}

void run_encode(const TokenizerOptions& o) {
    Tokenizer tok = Tokenizer::load(o.tokenizer);
    std::string text = read_stdin();
    int threads = std::max(1u, std::thread::hardware_concurrency());
    std::vector<int32_t> ids = tok.encode_parallel(text, threads);
    if (o.eot) ids.insert(ids.begin(), tok.eot());
    std::string out;
    for (size_t i = 0; i < ids.size(); i++) out += (i ? " " : "") + std::to_string(ids[i]);
    write_stdout(out + "\n");
}

void run_decode(const TokenizerOptions& o) {
    Tokenizer tok = Tokenizer::load(o.tokenizer);
    std::string text = read_stdin(), out;
    size_t n = 0;
    for (size_t pos = text.find_first_not_of(" \t\r\n"); pos != std::string::npos;
         pos = text.find_first_not_of(" \t\r\n", pos)) {
        size_t end = std::min(text.find_first_of(" \t\r\n", pos), text.size());
        std::string word = text.substr(pos, end - pos);
        int id = -1;
        require(parse_int(word, id) && id >= 0 && id < tok.vocab_size(),
                "stdin: token " + std::to_string(n) + " ('" + word.substr(0, 20) +
                    "') is not an id of the vocabulary (0.." +
                    std::to_string(tok.vocab_size() - 1) + ")");
        out += tok.token_bytes(id);
        pos = end, n++;
    }
    write_stdout(out);
}

void run_train(const TokenizerOptions& o) {
    auto start = std::chrono::steady_clock::now();
    DocumentReader reader(expand_inputs(o.inputs), o.field, o.strict);
    std::string text;
    Document doc;
    while (reader.next(doc)) (text += doc.text) += '\n';  // documents do not share pre-tokens
    report_malformed(reader.stats());
    require(!text.empty(), "no text in the inputs");
    Tokenizer tok = train_bpe(text, o.vocab);
    tok.save_gpt2(o.out);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf(
        "diloco tokenizer train: %s tokens (%s merges) from %s documents, %.2f MB, in "
        "%.1f s -> %s/encoder.json, %s/vocab.bpe\n",
        thousands(tok.vocab_size()).c_str(), thousands(tok.merges().size()).c_str(),
        thousands(reader.stats().documents).c_str(), text.size() / 1e6, s, o.out.c_str(),
        o.out.c_str());
}

void add_reader_options(CLI::App& cmd, TokenizerOptions& o) {
    cmd.add_option("--field", o.field, "JSON-lines field holding the text")->capture_default_str();
    cmd.add_flag("--strict", o.strict, "a malformed JSON line is an error (default: skipped)");
    cmd.add_option("inputs", o.inputs,
                   "text files (one document each), directories of them, JSON lines (.gz)")
        ->required();
}

}  // namespace

void add_tokenizer_command(CLI::App& app) {
    auto o = std::make_shared<TokenizerOptions>();
    CLI::App* cmd = app.add_subcommand("tokenizer", "encode, decode or train a byte-level BPE");
    cmd->require_subcommand(1);
    const char* path_help =
        "a directory with encoder.json + vocab.bpe or tokenizer.json, or one "
        "of those files";

    CLI::App* encode = cmd->add_subcommand("encode", "stdin text -> space-separated ids");
    encode->add_option("--tokenizer", o->tokenizer, path_help)->required();
    encode->add_flag("--eot", o->eot, "prefix <|endoftext|>");
    encode->callback([o] { run_encode(*o); });

    CLI::App* decode = cmd->add_subcommand("decode", "whitespace-separated ids on stdin -> bytes");
    decode->add_option("--tokenizer", o->tokenizer, path_help)->required();
    decode->callback([o] { run_decode(*o); });

    CLI::App* train = cmd->add_subcommand("train", "learn a byte-level BPE vocabulary");
    // 256 bytes and <|endoftext|> at least; at most the largest vocabulary a model takes.
    add_number(*train, "--vocab", o->vocab, {.min = 257, .max = 1 << 24},
               "vocabulary size, <|endoftext|> included")
        ->default_str("")
        ->required();
    train->add_option("--out", o->out, "directory for encoder.json and vocab.bpe")->required();
    add_reader_options(*train, *o);
    train->callback([o] { run_train(*o); });
}

}  // namespace diloco
