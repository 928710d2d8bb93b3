// `diloco prepare`: inputs -> token shards for K islands and a manifest; a progress bar on
// stderr when it is a terminal, a summary line on stdout at the end.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <memory>

#include "data/prepare.h"
#include "tools/commands.h"
#include "tools/options.h"
#include "tools/read_report.h"
#include "util/error.h"
#include "util/format.h"

namespace diloco {

namespace {

struct PrepareArgs {
    PrepareOptions o;
    std::string split = "iid";
    double val_fraction = 0;  // when given, for documents and text files alike
    CLI::Option* val_fraction_option = nullptr;
};

std::string duration(double s) {
    char buf[32];
    int t = static_cast<int>(s + 0.5);
    if (t >= 3600)
        std::snprintf(buf, sizeof buf, "%dh%02dm", t / 3600, t / 60 % 60);
    else
        std::snprintf(buf, sizeof buf, "%dm%02ds", t / 60, t % 60);
    return buf;
}

void show_progress(const PrepareProgress& p) {
    double s = p.seconds > 0 ? p.seconds : 1e-9;
    double done = p.total_input_bytes ? double(p.input_bytes) / p.total_input_bytes : 1.0;
    double eta = done > 0 ? p.seconds * (1 - done) / done : 0;
    std::fprintf(stderr,
                 "\rprepare %5.1f%% | %s docs | %.0f docs/s | %.1f MB/s | %s tokens | "
                 "ETA %s   ",
                 100 * done, thousands(p.documents).c_str(), p.documents / s,
                 p.text_bytes / s / 1e6, thousands(p.tokens).c_str(), duration(eta).c_str());
    std::fflush(stderr);
}

void print_summary(const PrepareResult& r) {
    const Manifest& m = r.manifest;
    std::string docs, tokens;
    size_t shards = m.val.shards.size();
    for (const ShardSet& s : m.train) {
        docs += (docs.empty() ? "" : "/") + thousands(s.documents);
        tokens += (tokens.empty() ? "" : "/") + thousands(s.tokens);
        shards += s.shards.size();
    }
    uint64_t total = m.val.tokens;
    for (const ShardSet& s : m.train) total += s.tokens;
    std::string tails =
        r.text_tails ? " (" + thousands(r.text_tails) + " text-file tail(s))" : "";
    std::printf(
        "diloco prepare: %s documents (%.2f MB) -> %s tokens in %.2f s (%.0f docs/s, "
        "%.2f MB/s, %d threads); validation %s documents%s, %s tokens; %d island(s) (%s "
        "split) %s documents, %s tokens; %zu shards -> %s\n",
        thousands(r.read.documents).c_str(), r.read.bytes / 1e6, thousands(total).c_str(),
        r.seconds, r.read.documents / r.seconds, r.read.bytes / 1e6 / r.seconds, r.threads,
        thousands(m.val.documents).c_str(), tails.c_str(), thousands(m.val.tokens).c_str(),
        m.islands, m.split.c_str(), docs.c_str(), tokens.c_str(), shards, m.path().c_str());
}

void run_prepare(PrepareArgs& a) {
    a.o.split = parse_split(a.split);
    if (a.val_fraction_option->count() > 0)
        a.o.val_fraction = a.o.text_val_fraction = a.val_fraction;
    const bool bar = ::isatty(::fileno(stderr));
    auto end_bar = [bar] {
        if (bar) std::fputc('\n', stderr);  // an error message then starts on its own line
    };
    PrepareResult r;
    try {
        r = prepare(a.o, [bar](const PrepareProgress& p) {
            if (bar) show_progress(p);
        });
    } catch (...) {
        end_bar();
        throw;
    }
    end_bar();
    report_malformed(r.read);
    print_summary(r);
}

}  // namespace

void add_prepare_command(CLI::App& app) {
    auto a = std::make_shared<PrepareArgs>();
    PrepareOptions& o = a->o;
    CLI::App* cmd = app.add_subcommand("prepare", "tokenize documents into shards for islands");
    cmd->add_option("--tokenizer", o.tokenizer,
                    "tokenizer: a directory with encoder.json + vocab.bpe or tokenizer.json")
        ->required();
    cmd->add_option("--out", o.out, "output directory (shards, manifest.json, tokenizer files)")
        ->required();
    add_number(*cmd, "--islands", o.islands, {.min = 1, .max = 4096},
               "islands to deal training documents to");
    cmd->add_option("--split", a->split,
                    "iid (round robin), domain (by URL host) or cluster "
                    "(k-means over tf-idf)")
        ->capture_default_str();
    auto docs = add_number(*cmd, "--val-docs", o.val_docs, {.min = 0},
                           "validation: the first N documents, whole (a text file is one; 0: "
                           "none, all for training)")
                    ->default_str("");
    // A validation set of nothing would be refused by train only after the data is written.
    a->val_fraction_option =
        add_number(*cmd, "--val-fraction", a->val_fraction,
                   {.min = 0, .max = 1, .min_open = true, .max_open = true},
                   "validation (default): of JSON-lines documents the first, then one in "
                   "every 1/F (F = 0.01); of each text file the last F of its tokens "
                   "(F = 0.1, nanoGPT's split of Tiny Shakespeare), so one book gives both "
                   "sets")
            ->default_str("")
            ->excludes(docs);
    // The shard header counts tokens in an int32.
    add_number(*cmd, "--shard-tokens", o.shard_tokens, {.min = 1, .max = INT32_MAX},
               "tokens per shard file");
    cmd->add_option("--field", o.field, "JSON-lines field holding the text")->capture_default_str();
    cmd->add_flag("--strict", o.strict, "a malformed JSON line is an error (default: skipped)");
    add_number(*cmd, "--seed", o.seed, {}, "seed of the cluster split");
    cmd->add_option("inputs", o.inputs,
                    "text files (one document each, cut by tokens for validation), directories "
                    "of them, JSON lines (.gz)")
        ->required();
    cmd->callback([a] { run_prepare(*a); });
}

}  // namespace diloco
