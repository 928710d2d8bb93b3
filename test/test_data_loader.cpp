// Tests of the shard loader: islands and ranks read disjoint windows, batches are a pure
// function of (seed, index, row) so resuming repeats them, and the validation set is fixed.
#include <catch2/catch.hpp>
#include <filesystem>
#include <numeric>
#include <set>

#include "data/manifest.h"
#include "data/shard.h"
#include "data/shard_data.h"
#include "test/helpers.h"
#include "util/error.h"

using namespace diloco;
using Catch::Matchers::Contains;
using diloco::test::TempDir;

namespace {

constexpr int kVocab = 30000;
constexpr int T = 8;

// Each token is unique: island i holds 10000 * i + position, validation 20000 + position, so
// a window is known by its first token.
ShardSet write_set(const std::string& dir, const std::string& prefix, int first, size_t n,
                   size_t per_shard) {
    ShardSet set;
    for (size_t done = 0; done < n; done += per_shard) {
        std::string name = prefix + std::to_string(set.shards.size()) + ".bin";
        ShardWriter w(dir + "/" + name, kVocab);
        for (size_t i = done; i < std::min(n, done + per_shard); i++) {
            int32_t t = first + static_cast<int32_t>(i);
            w.append(&t, 1);
        }
        w.finish();
        set.shards.push_back(name);
    }
    set.tokens = n;
    set.documents = 1;
    return set;
}

// A prepared directory by hand: `islands` training splits of 801 tokens in shards of 300.
std::string make_manifest(const TempDir& dir, int islands) {
    Manifest m;
    m.dir = dir.path();
    m.vocab = kVocab;
    m.split = "iid";
    m.islands = islands;
    m.shard_tokens = 1000;
    for (int i = 0; i < islands; i++)
        m.train.push_back(write_set(m.dir, "t" + std::to_string(i) + "_", 10000 * i, 801, 300));
    m.val = write_set(m.dir, "v", 20000, 100, 1000);
    write_manifest(m);
    return m.path();
}

std::unique_ptr<ShardData> open(const std::string& path, int island, int islands) {
    return ShardData::open(path, {island, islands, T, 0.1});
}

std::vector<int32_t> firsts(const TokenBatch& b) {
    std::vector<int32_t> f;
    for (int r = 0; r < b.B; r++) f.push_back(b.inputs[size_t(r) * b.T]);
    return f;
}

}  // namespace

TEST_CASE("loader: windows are consecutive tokens and targets are the next ones", "[data]") {
    TempDir dir;
    auto d = open(make_manifest(dir, 2), 1, 2);
    CHECK(d->vocab() == kVocab);
    CHECK(d->train_windows(T) == 100);  // (801 - 1) / 8
    TokenBatch b = d->train_batch(1, 0, 5, T);
    for (int r = 0; r < 5; r++)
        for (int t = 0; t < T; t++) {
            int32_t in = b.inputs[r * T + t];
            CHECK(in >= 10000);
            CHECK(in < 10801);
            CHECK((in - 10000) % T == t);  // windows start at multiples of T
            CHECK(b.targets[r * T + t] == in + 1);
        }
}

TEST_CASE("loader: islands and ranks never share a window", "[data]") {
    TempDir dir;
    std::string path = make_manifest(dir, 2);
    auto island0 = open(path, 0, 2), island1 = open(path, 1, 2);
    for (uint64_t index = 0; index < 50; index++) {
        for (int32_t t : island0->train_batch(7, index, 4, T).inputs) CHECK(t < 10000);
        for (int32_t t : island1->train_batch(8, index, 4, T).inputs) {
            CHECK(t >= 10000);
            CHECK(t < 20000);
        }
        // Two ranks of 3 rows each see distinct windows, exactly those of one rank of 6 rows.
        std::vector<int32_t> rank0 = firsts(island0->train_batch(7, index, 3, T, 0));
        std::vector<int32_t> rank1 = firsts(island0->train_batch(7, index, 3, T, 3));
        std::vector<int32_t> both = rank0;
        both.insert(both.end(), rank1.begin(), rank1.end());
        CHECK(std::set<int32_t>(both.begin(), both.end()).size() == 6);
        CHECK(firsts(island0->train_batch(7, index, 6, T)) == both);
    }
}

TEST_CASE("loader: one row per batch visits every window once per epoch", "[data]") {
    TempDir dir;
    auto d = open(make_manifest(dir, 1), 0, 1);
    const uint64_t w = d->train_windows(T);
    std::set<uint64_t> seen;
    for (uint64_t index = 0; index < w; index++) seen.insert(d->window_of(3, index, 0, T));
    CHECK(seen.size() == w);
    CHECK(d->window_of(3, 5, 0, T) != d->window_of(4, 5, 0, T));  // the seed matters
}

TEST_CASE("loader: the same index gives the same batch after reopening (resume)", "[data]") {
    TempDir dir;
    std::string path = make_manifest(dir, 2);
    TokenBatch before = open(path, 1, 2)->train_batch(42, 17, 4, T, 4);
    TokenBatch after = open(path, 1, 2)->train_batch(42, 17, 4, T, 4);
    CHECK(before.inputs == after.inputs);
    CHECK(before.targets == after.targets);
    CHECK(before.inputs != open(path, 1, 2)->train_batch(42, 18, 4, T, 4).inputs);
}

TEST_CASE("loader: the validation set is fixed consecutive windows", "[data]") {
    TempDir dir;
    std::string path = make_manifest(dir, 2);
    std::vector<TokenBatch> a = open(path, 0, 2)->val_batches(4, T, 100);
    std::vector<TokenBatch> b = open(path, 1, 2)->val_batches(4, T, 100);
    REQUIRE(a.size() == 3);  // (100 - 1) / 8 = 12 windows, 4 per batch
    CHECK(a[2].B == 4);
    CHECK(a[0].inputs[0] == 20000);
    CHECK(a[1].inputs[0] == 20000 + 4 * T);
    CHECK(a[2].inputs == b[2].inputs);  // every island validates on the same set
    CHECK(open(path, 0, 2)->val_batches(4, T, 2).size() == 2);
}

TEST_CASE("loader: island counts other than the manifest's", "[data]") {
    TempDir dir;
    std::string k2 = make_manifest(dir, 2);
    // One island reads every island's shards.
    std::set<int32_t> ranges;
    auto all = open(k2, 0, 1);
    for (uint64_t index = 0; index < 40; index++)
        for (int32_t t : all->train_batch(1, index, 4, T).inputs) ranges.insert(t / 10000);
    CHECK(ranges == std::set<int32_t>{0, 1});
    CHECK_THROWS_WITH(open(k2, 0, 3), Contains("prepared for 2 islands") && Contains("not 3"));

    // A one-island manifest serves any number of islands, each its own windows.
    TempDir one;
    std::string k1 = make_manifest(one, 1);
    std::set<int32_t> seen[3];
    for (int i = 0; i < 3; i++) {
        auto d = open(k1, i, 3);
        for (uint64_t index = 0; index < 40; index++)
            for (int32_t t : firsts(d->train_batch(5 + i, index, 2, T))) seen[i].insert(t);
    }
    for (int i = 0; i < 3; i++)
        for (int j = i + 1; j < 3; j++)
            for (int32_t t : seen[i]) CHECK(seen[j].count(t) == 0);
}

TEST_CASE("loader: a single .bin keeps its tail for validation", "[data]") {
    TempDir dir;
    write_set(dir.path(), "x", 0, 1000, 1000);
    auto d = ShardData::open(dir.file("x0.bin"), {0, 1, T, 0.1});
    CHECK(d->tokenizer_dir().empty());
    CHECK(d->val_batches(1, T, 1)[0].inputs[0] == 900);
    for (int32_t t : d->train_batch(1, 3, 8, T).targets) CHECK(t < 900);
}

TEST_CASE("loader: clear errors for short or inconsistent data", "[data]") {
    TempDir dir;
    std::string path = make_manifest(dir, 2);
    CHECK_THROWS_WITH(ShardData::open(path, {0, 2, 900, 0.1}),
                      Contains("801 training tokens hold no window of 901 tokens"));
    CHECK_THROWS_WITH(ShardData::open(path, {0, 2, 200, 0.1}),
                      Contains("100 validation tokens, fewer than one window of 201"));
    Manifest m = read_manifest(path);
    m.train[1].tokens = 5;
    write_manifest(m);
    CHECK_THROWS_WITH(open(path, 1, 2),
                      Contains("lists 5 training tokens, but its shards hold 801"));
    CHECK_THROWS_WITH(open(dir.file("none"), 0, 1), Contains("none: not found"));
    test::write_text(dir.file("manifest.json"), "{\"format\": \"diloco-shards\"}");
    CHECK_THROWS_WITH(open(dir.path(), 0, 1), Contains("manifest.json: field \"version\" is missing"));
}
