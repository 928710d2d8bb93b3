// The prepare pipeline: chunks of records read on one thread while the previous chunk is parsed,
// tokenized, cut (a text file's validation tail) and given its island affinity on all threads,
// then appended in input order.
#include "data/prepare.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <future>
#include <memory>
#include <optional>
#include <span>

#include "data/shard.h"
#include "data/text_clusters.h"
#include "data/tokenizer.h"
#include "util/error.h"
#include "util/files.h"

namespace diloco {

namespace {

constexpr size_t kChunkRecords = 4096, kChunkBytes = 8 << 20;

// Documents appended to fixed-size shards DIR/PREFIX_000000.bin, ...; a document may continue
// in the next shard, as in llm.c's shards.
class ShardSink {
public:
    ShardSink(std::string dir, std::string prefix, int vocab, uint64_t shard_tokens)
        : dir_(std::move(dir)),
          prefix_(std::move(prefix)),
          vocab_(vocab),
          shard_tokens_(shard_tokens) {}

    void append(std::span<const int32_t> doc) {
        set_.documents++;
        set_.tokens += doc.size();
        for (size_t done = 0; done < doc.size();) {
            if (!writer_ || writer_->tokens() == shard_tokens_) open_next();
            size_t n = std::min<size_t>(doc.size() - done, shard_tokens_ - writer_->tokens());
            writer_->append(doc.data() + done, n);
            done += n;
        }
    }

    ShardSet finish() {
        if (writer_) writer_->finish();
        return set_;
    }

    // After a failure: the shard being written and those finished are removed.
    void remove_written() {
        writer_.reset();
        std::error_code ec;
        for (const std::string& name : set_.shards) std::filesystem::remove(dir_ + "/" + name, ec);
    }

private:
    void open_next() {
        if (writer_) writer_->finish();
        char name[64];
        std::snprintf(name, sizeof name, "%s_%06zu.bin", prefix_.c_str(), set_.shards.size());
        set_.shards.push_back(name);
        writer_ = std::make_unique<ShardWriter>(dir_ + "/" + name, vocab_);
    }

    std::string dir_, prefix_;
    int vocab_;
    uint64_t shard_tokens_;
    std::unique_ptr<ShardWriter> writer_;
    ShardSet set_;
};

// Where documents go, in input order. A document dealt whole goes to validation (-1) when the
// document rule picks it, else to an island; a text file's training part (its tail is already
// held out) always goes to an island. `affinity` is the island its site or topic asks for
// (domain and cluster splits); iid deals training documents round-robin.
class Dealer {
public:
    explicit Dealer(const PrepareOptions& o) : o_(o) {}

    int whole(int affinity) {
        uint64_t i = whole_++;
        if (val_before(i + 1) > val_before(i)) return -1;
        return training(affinity);
    }
    int training(int affinity) {
        if (o_.split != SplitMethod::iid) return affinity;
        return static_cast<int>(training_++ % o_.islands);
    }

private:
    // Validation documents among the first i dealt whole.
    uint64_t val_before(uint64_t i) const {
        if (o_.val_docs >= 0) return std::min<uint64_t>(i, o_.val_docs);
        return static_cast<uint64_t>(std::ceil(static_cast<double>(i) * o_.val_fraction));
    }

    const PrepareOptions& o_;
    uint64_t whole_ = 0, training_ = 0;
};

struct Chunk {
    std::vector<Record> records;
    uint64_t consumed = 0;  // input bytes read once this chunk was complete
};

Chunk read_chunk(RecordReader& reader) {
    Chunk chunk;
    size_t bytes = 0;
    for (Record r; chunk.records.size() < kChunkRecords && bytes < kChunkBytes && reader.next(r);) {
        bytes += r.raw.size();
        chunk.records.push_back(std::move(r));
    }
    chunk.consumed = reader.consumed();
    return chunk;
}

struct Encoded {
    bool ok = false;
    std::string why;  // when not ok
    bool cut = false;  // a text file cut by tokens: tokens is its training part
    std::vector<int32_t> tokens;
    std::vector<int32_t> tail;  // a cut text file's validation part (empty when too short)
    uint64_t text_bytes = 0;
    int affinity = 0;
};

int affinity(const PrepareOptions& o, const Document& doc,
             const std::optional<TextClusters>& clusters) {
    switch (o.split) {
        case SplitMethod::iid: return 0;
        case SplitMethod::domain: {
            std::string host = url_host(doc.url);
            return site_island(host.empty() ? doc.file : host, o.islands);
        }
        case SplitMethod::cluster: return clusters->assign(doc.text);
    }
    return 0;
}

// Moves the last ids of a text file into its validation part, which starts with its own
// <|endoftext|> as every document does: the two parts together hold the file's ids once.
void cut_tail(Encoded& e, double fraction, int32_t eot) {
    uint64_t held = text_val_ids(e.tokens.size() - 1, fraction);
    if (held == 0) return;
    e.tail.reserve(held + 1);
    e.tail.push_back(eot);
    e.tail.insert(e.tail.end(), e.tokens.end() - held, e.tokens.end());
    e.tokens.resize(e.tokens.size() - held);
}

std::vector<Encoded> encode_chunk(Chunk& chunk, const PrepareOptions& o, const Tokenizer& tok,
                                  const std::optional<TextClusters>& clusters) {
    const int64_t n = static_cast<int64_t>(chunk.records.size());
    std::vector<Encoded> out(n);
#pragma omp parallel
    {
        BatchEncoder encoder(tok);  // one cache per thread, warm across documents
#pragma omp for schedule(dynamic, 4)
        for (int64_t i = 0; i < n; i++) {
            Encoded& e = out[i];
            Document doc;
            e.ok = parse_record(chunk.records[i], o.field, doc, e.why);
            if (!e.ok) continue;
            e.tokens.reserve(doc.text.size() / 3 + 2);
            e.tokens.push_back(tok.eot());
            encoder.encode(doc.text, e.tokens);
            e.text_bytes = doc.text.size();
            e.affinity = affinity(o, doc, clusters);
            e.cut = !chunk.records[i].json && o.val_docs < 0;
            if (e.cut) cut_tail(e, o.text_val_fraction, tok.eot());
        }
    }
    return out;
}

void check_options(const PrepareOptions& o) {
    require(o.islands >= 1, "--islands must be at least 1, got " + std::to_string(o.islands));
    require(o.shard_tokens >= 1 && o.shard_tokens <= INT32_MAX,
            "--shard-tokens must be in 1..2^31-1 (the shard header counts tokens in int32)");
    require(o.val_fraction >= 0 && o.val_fraction < 1 && o.text_val_fraction >= 0 &&
                o.text_val_fraction < 1,
            "--val-fraction must be in [0, 1)");
    require(!o.out.empty(), "--out is required");
}

// The clusters are fitted on the first documents, so that one pass over the rest suffices.
std::optional<TextClusters> fit_clusters(const PrepareOptions& o,
                                         const std::vector<std::string>& files) {
    if (o.split != SplitMethod::cluster) return std::nullopt;
    DocumentReader reader(files, o.field, false);  // the main pass reports malformed lines
    std::vector<std::string> sample;
    for (Document doc; sample.size() < kClusterSample && reader.next(doc);)
        sample.push_back(std::move(doc.text));
    std::vector<std::string_view> views(sample.begin(), sample.end());
    require(views.size() >= size_t(o.islands), std::to_string(views.size()) +
                                                   " documents cannot form " +
                                                   std::to_string(o.islands) + " clusters");
    return TextClusters::fit(views, o.islands, o.seed);
}

Manifest start_manifest(const PrepareOptions& o, const Tokenizer& tok, const ReadStats& read) {
    namespace fs = std::filesystem;
    Manifest m;
    m.dir = o.out;
    for (const std::string& in : o.inputs) m.inputs.push_back(fs::absolute(in).string());
    m.field = o.field;
    m.tokenizer = fs::absolute(o.tokenizer).string();
    m.vocab = tok.vocab_size();
    m.eot = tok.eot();
    m.token_bytes = shard_token_bytes(m.vocab);
    m.split = split_name(o.split);
    m.islands = o.islands;
    m.seed = o.seed;
    m.shard_tokens = o.shard_tokens;
    m.malformed_lines = read.malformed;
    return m;
}

// A text file too short to cut, remembered for the error when nothing else gave validation.
struct ShortText {
    std::string file;
    uint64_t ids = 0;
};

void check_validation(const Manifest& m, const PrepareOptions& o, const ShortText& short_text) {
    if (m.val.documents > 0 || short_text.file.empty() || o.text_val_fraction == 0) return;
    char percent[32];
    std::snprintf(percent, sizeof percent, "%g%%", 100 * o.text_val_fraction);
    throw Error(short_text.file + ": a text file of " + std::to_string(short_text.ids) +
                " token(s) cannot give both a training and a validation set (the last " +
                percent + " of its tokens are held out, at least one, leaving one to train on)");
}

void check_islands(const Manifest& m) {
    uint64_t train = 0;
    for (const ShardSet& s : m.train) train += s.documents;
    const char* hint = m.islands > 1 ? "; a set prepared for 1 island serves any number of "
                                       "islands in `diloco train`"
                                     : " (validation takes whole JSON-lines documents, and "
                                       "whole text files under --val-docs)";
    require(train >= uint64_t(m.islands),
            std::to_string(m.val.documents + train) +
                " documents: " + std::to_string(m.val.documents) + " for validation leave " +
                std::to_string(train) + " for training, fewer than the " +
                std::to_string(m.islands) + " island(s)" + hint);
    for (int i = 0; i < m.islands; i++)
        require(m.train[i].documents > 0, "island " + std::to_string(i) +
                                              " received no training documents under the " +
                                              m.split + " split; use fewer islands");
}

// The pass over the inputs into the sinks, then the tokenizer's files and the manifest.
PrepareResult write_shards(const PrepareOptions& o, const std::vector<std::string>& files,
                           const Tokenizer& tok, ShardSink& val, std::vector<ShardSink>& train,
                           const std::function<void(const PrepareProgress&)>& progress,
                           std::chrono::steady_clock::time_point start) {
    auto elapsed = [&] {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    };
    const std::optional<TextClusters> clusters = fit_clusters(o, files);
    Dealer dealer(o);
    ReadStats stats;
    uint64_t text_tails = 0;
    ShortText short_text;
    RecordReader reader(files);
    PrepareProgress p;
    p.total_input_bytes = reader.total();
    auto next = std::async(std::launch::async, read_chunk, std::ref(reader));
    for (;;) {
        Chunk chunk = next.get();
        if (chunk.records.empty()) break;
        next = std::async(std::launch::async, read_chunk, std::ref(reader));
        std::vector<Encoded> encoded = encode_chunk(chunk, o, tok, clusters);
        for (size_t i = 0; i < encoded.size(); i++) {
            const Encoded& e = encoded[i];
            if (!e.ok) {
                stats.add_malformed(chunk.records[i], e.why, o.strict);
                continue;
            }
            if (!e.cut) {
                int island = dealer.whole(e.affinity);
                (island < 0 ? val : train[island]).append(e.tokens);
            } else {
                train[dealer.training(e.affinity)].append(e.tokens);
                if (!e.tail.empty()) {
                    val.append(e.tail);
                    text_tails++;
                } else if (short_text.file.empty()) {
                    short_text = {chunk.records[i].file, e.tokens.size() - 1};
                }
            }
            stats.add_document(e.text_bytes);
            p.tokens += e.tokens.size() + e.tail.size();
        }
        p.documents = stats.documents;
        p.text_bytes = stats.bytes;
        p.input_bytes = chunk.consumed;
        p.seconds = elapsed();
        progress(p);
    }
    require(stats.documents > 0, "no documents in the inputs");

    Manifest m = start_manifest(o, tok, stats);
    m.val = val.finish();
    for (ShardSink& sink : train) m.train.push_back(sink.finish());
    check_validation(m, o, short_text);
    check_islands(m);
    tok.save_gpt2(o.out);
    write_manifest(m);
    return {m, stats, text_tails, elapsed(), omp_get_max_threads()};
}

}  // namespace

uint64_t text_val_ids(uint64_t ids, double fraction) {
    if (fraction <= 0 || ids < 2) return 0;
    uint64_t held = static_cast<uint64_t>(std::llround(static_cast<double>(ids) * fraction));
    return std::clamp<uint64_t>(held, 1, ids - 1);
}

PrepareResult prepare(const PrepareOptions& o,
                      const std::function<void(const PrepareProgress&)>& progress) {
    const auto start = std::chrono::steady_clock::now();
    check_options(o);
    std::vector<std::string> files = expand_inputs(o.inputs);
    Tokenizer tok = Tokenizer::load(o.tokenizer);
    std::error_code ec;
    const bool created = path_kind(o.out) == PathKind::kMissing;
    std::filesystem::create_directories(o.out, ec);
    require(!ec, o.out + ": cannot create directory (" + ec.message() + ")");
    // A manifest from an earlier run would describe shards this run is about to overwrite.
    std::filesystem::remove(o.out + "/manifest.json", ec);
    ShardSink val(o.out, "val", tok.vocab_size(), o.shard_tokens);
    std::vector<ShardSink> train;
    for (int i = 0; i < o.islands; i++)
        train.emplace_back(o.out, "train_i" + std::to_string(i), tok.vocab_size(), o.shard_tokens);
    try {
        return write_shards(o, files, tok, val, train, progress, start);
    } catch (...) {  // a failed run leaves no shards behind, nor the directory it made
        val.remove_written();
        for (ShardSink& sink : train) sink.remove_written();
        if (created) std::filesystem::remove(o.out, ec);
        throw;
    }
}

}  // namespace diloco
