// Token-shard training data: opening a manifest or a .bin, choosing an island's shards, and
// serving windows in a seeded order that is a pure function of (seed, batch index, row).
#include "data/shard_data.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "data/manifest.h"
#include "util/error.h"
#include "util/files.h"
#include "util/format.h"
#include "util/rng.h"

namespace diloco {

// ---------------------------------------------------------------------------------------------
// The stream.

void TokenStream::add(ShardFile shard) {
    starts_.push_back(size() + shard.size());
    shards_.push_back(std::move(shard));
}

void TokenStream::copy(size_t from, size_t n, int32_t* out) const {
    size_t s = std::upper_bound(starts_.begin(), starts_.end(), from) - starts_.begin();
    while (n > 0) {
        size_t begin = s == 0 ? 0 : starts_[s - 1];
        size_t take = std::min(n, starts_[s] - from);
        shards_[s].copy(from - begin, take, out);
        out += take, from += take, n -= take, s++;
    }
}

// ---------------------------------------------------------------------------------------------
// Opening.

namespace {

// A shard the manifest lists, checked against the manifest's vocabulary; errors name both.
ShardFile open_listed(const Manifest& m, const std::string& name) {
    try {
        return ShardFile(m.shard_path(name), m.vocab);
    } catch (const Error& e) {
        throw Error(std::string(e.what()) + " (listed in " + m.path() + ")");
    }
}

std::shared_ptr<TokenStream> open_sets(const Manifest& m, const std::vector<ShardSet>& sets,
                                       const std::string& what) {
    auto stream = std::make_shared<TokenStream>();
    uint64_t want = 0;
    for (const ShardSet& set : sets) {
        want += set.tokens;
        for (const std::string& name : set.shards) {
            ShardFile shard = open_listed(m, name);
            require(shard.token_bytes() == m.token_bytes,
                    shard.path() + ": tokens of " + std::to_string(shard.token_bytes()) +
                        " bytes, but " + m.path() + " says " + std::to_string(m.token_bytes));
            require(shard.size() <= m.shard_tokens,
                    shard.path() + ": " + std::to_string(shard.size()) + " tokens, more than the " +
                        std::to_string(m.shard_tokens) + " per shard of " + m.path());
            stream->add(std::move(shard));
        }
    }
    require(stream->size() == want, m.path() + ": lists " + std::to_string(want) + " " + what +
                                        " tokens, but its shards hold " +
                                        std::to_string(stream->size()));
    return stream;
}

}  // namespace

bool is_shard_data(const std::string& path) {
    return path_kind(path) == PathKind::kDirectory || path.ends_with(".json") ||
           path.ends_with(".bin");
}

std::unique_ptr<ShardData> ShardData::open(const std::string& path, const ShardDataOptions& o) {
    require(o.islands >= 1 && o.island >= 0 && o.island < o.islands,
            "island " + std::to_string(o.island) + " of " + std::to_string(o.islands));
    std::unique_ptr<ShardData> d =
        path.ends_with(".bin") ? from_bin(path, o) : from_manifest(path, o);
    if (d->stride_ > 1)
        d->what_ = "island " + std::to_string(o.island) + " of " + std::to_string(o.islands) +
                   " (windows w with w % " + std::to_string(o.islands) +
                   " == " + std::to_string(o.island) + ")";
    d->check(o);
    return d;
}

std::unique_ptr<ShardData> ShardData::from_manifest(const std::string& path,
                                                    const ShardDataOptions& o) {
    Manifest m = read_manifest(path);
    auto d = std::unique_ptr<ShardData>(new ShardData);
    d->source_ = m.path();
    d->vocab_ = m.vocab;
    d->eot_ = m.eot;
    if (path_kind(m.dir + "/encoder.json") != PathKind::kMissing) d->tokenizer_dir_ = m.dir;
    std::vector<ShardSet> sets;
    if (o.islands == m.islands && m.islands > 1) {
        sets = {m.train[o.island]};
        d->what_ = "island " + std::to_string(o.island) + " of " + std::to_string(o.islands) +
                   " (" + m.split + " split)";
    } else if (o.islands == 1 || m.islands == 1) {
        sets = m.train;
        d->stride_ = o.islands, d->offset_ = o.island;
        if (m.islands > 1) d->what_ = "all " + std::to_string(m.islands) + " islands";
    } else {
        throw Error(m.path() + ": prepared for " + std::to_string(m.islands) +
                    " islands; train with " + std::to_string(m.islands) +
                    " islands (each its own shards) or 1 (all shards), not " +
                    std::to_string(o.islands));
    }
    auto train = open_sets(m, sets, "training");
    d->train_ = {train, 0, train->size()};
    auto val = open_sets(m, {m.val}, "validation");
    d->val_ = {val, 0, val->size()};
    return d;
}

std::unique_ptr<ShardData> ShardData::from_bin(const std::string& path, const ShardDataOptions& o) {
    require(o.val_fraction > 0 && o.val_fraction < 1,
            "validation fraction " + std::to_string(o.val_fraction) + " must be in (0, 1)");
    ShardFile shard(path);
    auto d = std::unique_ptr<ShardData>(new ShardData);
    d->source_ = path;
    d->vocab_ = shard.vocab();
    d->eot_ = d->vocab_ - 1;  // llm.c's .bin shards hold GPT-2 tokens: <|endoftext|> is last
    auto stream = std::make_shared<TokenStream>();
    stream->add(std::move(shard));
    size_t n = stream->size(), val = static_cast<size_t>(std::llround(n * o.val_fraction));
    d->train_ = {stream, 0, n - val};
    d->val_ = {stream, n - val, n};
    d->stride_ = o.islands, d->offset_ = o.island;
    return d;
}

void ShardData::check(const ShardDataOptions& o) const {
    const size_t window = static_cast<size_t>(o.seq) + 1;
    require(o.seq >= 1 && train_windows(o.seq) >= 1,
            source_ + ": " + (what_.empty() ? "" : what_ + ": ") + thousands(train_.size()) +
                " training tokens hold no window of " + std::to_string(window) +
                " tokens for island " + std::to_string(o.island) + " of " +
                std::to_string(o.islands));
    require(val_.size() >= window, source_ + ": " + thousands(val_.size()) +
                                       " validation tokens, fewer than one window of " +
                                       std::to_string(window) + " tokens");
}

std::string ShardData::describe() const {
    return (what_.empty() ? "" : what_ + ": ") + thousands(train_.size()) + " training tokens in " +
           std::to_string(train_.stream->shards()) + " shard(s), " + thousands(val_.size()) +
           " validation tokens, vocabulary " + std::to_string(vocab_);
}

// ---------------------------------------------------------------------------------------------
// Windows.

namespace {

// A seeded bijection of [0, n): a 4-round Feistel network on the smallest even number of bits
// that covers n, walking the cycle until the value falls inside [0, n).
uint64_t permute(uint64_t x, uint64_t n, uint64_t seed) {
    if (n <= 1) return 0;
    int bits = 64 - __builtin_clzll(n - 1);
    int half = (bits + 1) / 2;
    uint64_t mask = (uint64_t(1) << half) - 1;
    do {
        uint64_t l = x >> half, r = x & mask;
        for (uint64_t round = 0; round < 4; round++) {
            uint64_t f = splitmix64(r ^ splitmix64(seed + round)) & mask;
            uint64_t next = l ^ f;
            l = r, r = next;
        }
        x = (l << half) | r;
    } while (x >= n);
    return x;
}

// The integer nearest n / golden ratio that is coprime with n: successive multiples of it
// modulo n fill [0, n) evenly (the three-distance theorem).
uint64_t golden_stride(uint64_t n) {
    uint64_t c = std::max<uint64_t>(1, static_cast<uint64_t>(std::llround(n * 0.6180339887498949)));
    while (std::gcd(c, n) != 1) c++;
    return c;
}

}  // namespace

uint64_t ShardData::train_windows(int T) const {
    uint64_t all = train_.size() > static_cast<size_t>(T) ? (train_.size() - 1) / T : 0;
    return all > offset_ ? (all - offset_ + stride_ - 1) / stride_ : 0;
}

uint64_t ShardData::train_window_start(uint64_t w, int T) const {
    return train_.begin + (w * stride_ + offset_) * static_cast<uint64_t>(T);
}

uint64_t ShardData::window_of(uint64_t seed, uint64_t index, uint64_t row, int T) const {
    using u128 = unsigned __int128;
    uint64_t n = train_windows(T);
    uint64_t x = static_cast<uint64_t>((u128(index % n) * golden_stride(n) + row) % n);
    return permute(x, n, seed);
}

static void fill_row(TokenBatch& batch, int row, const TokenStream& stream, size_t start,
                     std::vector<int32_t>& window) {
    stream.copy(start, window.size(), window.data());
    std::copy(window.begin(), window.end() - 1, batch.inputs.begin() + size_t(row) * batch.T);
    std::copy(window.begin() + 1, window.end(), batch.targets.begin() + size_t(row) * batch.T);
}

TokenBatch ShardData::train_batch(uint64_t seed, uint64_t index, int B, int T,
                                  int first_row) const {
    require(train_windows(T) >= 1, [&] {  // every micro-batch
        return source_ + ": training split shorter than one window of " + std::to_string(T + 1) +
               " tokens";
    });
    TokenBatch batch(B, T);
    std::vector<int32_t> window(static_cast<size_t>(T) + 1);
    for (int b = 0; b < B; b++) {
        uint64_t w = window_of(seed, index, static_cast<uint64_t>(first_row) + b, T);
        fill_row(batch, b, *train_.stream, train_window_start(w, T), window);
    }
    return batch;
}

std::vector<TokenBatch> ShardData::val_batches(int B, int T, int max_batches) const {
    const size_t windows = val_.size() > static_cast<size_t>(T) ? (val_.size() - 1) / T : 0;
    std::vector<int32_t> window(static_cast<size_t>(T) + 1);
    std::vector<TokenBatch> batches;
    for (size_t w = 0; w < windows && static_cast<int>(batches.size()) < max_batches;) {
        int rows = static_cast<int>(std::min<size_t>(B, windows - w));
        TokenBatch batch(rows, T);
        for (int r = 0; r < rows; r++, w++)
            fill_row(batch, r, *val_.stream, val_.begin + w * T, window);
        batches.push_back(std::move(batch));
    }
    return batches;
}

}  // namespace diloco
