// Tests of `prepare` as a library call: the validation split by document (of a text file, its
// last tokens), fixed-size shards, and the documents each island gets under each split.
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <map>
#include <set>

#include "data/prepare.h"
#include "data/text_clusters.h"
#include "test/data_helpers.h"
#include "test/helpers.h"
#include "util/error.h"
#include "util/files.h"
#include "util/rng.h"

using namespace diloco;
using Catch::Matchers::Contains;
using diloco::test::TempDir;

namespace {

struct Fixture {
    TempDir dir;
    Tokenizer tok = test::small_tokenizer(dir.file("tok"));

    PrepareOptions options(const std::vector<std::string>& texts,
                           const std::vector<std::string>& urls = {}) {
        test::write_text(dir.file("in.jsonl"), test::jsonl(texts, urls));
        PrepareOptions o;
        o.inputs = {dir.file("in.jsonl")};
        o.tokenizer = dir.file("tok");
        o.out = dir.file("out");
        return o;
    }
    Manifest run(const PrepareOptions& o) {
        return prepare(o, [](const PrepareProgress&) {}).manifest;
    }
    std::vector<std::string> docs(const Manifest& m, const ShardSet& s) {
        return test::split_documents(m, s, tok);
    }
};

std::vector<std::string> numbered_docs(int n) {
    std::vector<std::string> docs;
    for (int i = 0; i < n; i++)
        docs.push_back("document " + std::to_string(i) + " " + test::synthetic_text(50 + 7 * i, i));
    return docs;
}

// Three topics with disjoint words, documents dealt in turn: 0, 1, 2, 0, 1, ...
std::vector<std::string> topic_docs(int per_topic, uint64_t seed) {
    static const std::vector<std::vector<std::string>> topics = {
        {"apple", "banana", "cherry", "grape", "lemon", "mango", "orange", "peach", "plum"},
        {"engine", "piston", "turbine", "gear", "valve", "shaft", "bolt", "rotor", "clutch"},
        {"violin", "cello", "flute", "oboe", "harp", "piano", "drum", "trumpet", "guitar"}};
    Rng rng(seed, 0);
    std::vector<std::string> docs;
    for (int i = 0; i < per_topic * 3; i++) {
        std::string doc = "Doc " + std::to_string(i) + ":";
        for (int w = 0; w < 30; w++) doc += " " + topics[i % 3][rng.below(topics[i % 3].size())];
        docs.push_back(doc);
    }
    return docs;
}

}  // namespace

TEST_CASE("iid: validation by document, the rest dealt round-robin, fixed-size shards", "[data]") {
    Fixture f;
    std::vector<std::string> all = numbered_docs(23);
    PrepareOptions o = f.options(all);
    o.islands = 3;
    o.val_docs = 2;
    o.shard_tokens = 50;
    Manifest m = f.run(o);
    CHECK(f.docs(m, m.val) == std::vector<std::string>{all[0], all[1]});
    for (int i = 0; i < 3; i++) {
        std::vector<std::string> want;
        for (int d = 2 + i; d < 23; d += 3) want.push_back(all[d]);
        CHECK(f.docs(m, m.train[i]) == want);
        CHECK(m.train[i].documents == want.size());
        // Every shard but the last holds exactly shard_tokens tokens.
        for (size_t s = 0; s < m.train[i].shards.size(); s++) {
            ShardFile shard(m.shard_path(m.train[i].shards[s]));
            if (s + 1 < m.train[i].shards.size()) CHECK(shard.size() == 50);
        }
    }
    Manifest read = read_manifest(f.dir.file("out"));
    CHECK(read.train[2].shards == m.train[2].shards);
    CHECK(read.vocab == f.tok.vocab_size());
    CHECK(read.split == "iid");
}

TEST_CASE("a validation fraction takes the first document and one in every 1/F", "[data]") {
    Fixture f;
    std::vector<std::string> all = numbered_docs(10);
    PrepareOptions o = f.options(all);
    o.val_fraction = 0.25;
    Manifest m = f.run(o);
    CHECK(f.docs(m, m.val) == std::vector<std::string>{all[0], all[4], all[8]});
    CHECK(m.train[0].documents == 7);
    o.val_docs = 9;
    o.islands = 2;
    CHECK_THROWS_WITH(f.run(o), Contains("9 for validation leave 1 for training"));
}

TEST_CASE("a text file holds out the nearest whole number to F of its ids", "[data]") {
    CHECK(text_val_ids(100, 0.1) == 10);
    CHECK(text_val_ids(104, 0.1) == 10);
    CHECK(text_val_ids(106, 0.1) == 11);
    CHECK(text_val_ids(100, 0.01) == 1);
    CHECK(text_val_ids(30, 0.01) == 1);   // at least one
    CHECK(text_val_ids(2, 0.9) == 1);     // and one left for training
    CHECK(text_val_ids(1, 0.5) == 0);     // too short to give both
    CHECK(text_val_ids(0, 0.1) == 0);
    CHECK(text_val_ids(100, 0) == 0);
}

TEST_CASE("a text file of paragraphs: its last tenth of tokens is validation", "[data]") {
    Fixture f;
    const std::string book =
        "THE ISLANDS\n\n"
        "The island model learns from its own shore, and once in a while it hears the others.\n"
        "It keeps what it heard.\n\n"
        "Every island trains on its own data; the outer step joins them.\n\n"
        "In the end the islands agree, and the model is one.\n";
    test::write_text(f.dir.file("book.txt"), book);
    PrepareOptions o = f.options({});
    o.inputs = {f.dir.file("book.txt")};
    const uint64_t ids = f.tok.encode(book).size(), held = text_val_ids(ids, 0.1);
    REQUIRE(held >= 2);
    Manifest m = f.run(o);
    std::vector<std::string> train = f.docs(m, m.train[0]), val = f.docs(m, m.val);
    REQUIRE(train.size() == 1);
    REQUIRE(val.size() == 1);
    CHECK(train[0] + val[0] == book);  // cut by tokens: nothing lost, nothing added but eot
    CHECK(m.val.tokens == held + 1);
    CHECK(m.train[0].tokens == ids - held + 1);
    CHECK(book.ends_with(val[0]));
    CHECK(val[0].size() < book.size() / 4);
    // --val-docs takes whole documents: the text file is one.
    o.val_docs = 1;
    CHECK_THROWS_WITH(f.run(o), Contains("1 for validation leave 0 for training"));
    // F = 0 holds nothing out.
    o.val_docs = -1;
    o.text_val_fraction = 0;
    m = f.run(o);
    CHECK(m.val.documents == 0);
    CHECK(f.docs(m, m.train[0]) == std::vector<std::string>{book});
}

TEST_CASE("a single paragraph gives both sets, a text too short for both is an error",
          "[data]") {
    Fixture f;
    const std::string line = "One paragraph only, with no blank line anywhere in it.";
    test::write_text(f.dir.file("line.txt"), line);
    PrepareOptions o = f.options({});
    o.inputs = {f.dir.file("line.txt")};
    Manifest m = f.run(o);
    std::vector<std::string> train = f.docs(m, m.train[0]), val = f.docs(m, m.val);
    REQUIRE(val.size() == 1);
    CHECK(!val[0].empty());
    CHECK(train.at(0) + val[0] == line);

    o.out = f.dir.file("out_short");
    for (const std::string& text : {std::string("a"), std::string()}) {
        test::write_text(f.dir.file("short.txt"), text);
        o.inputs = {f.dir.file("short.txt")};
        CHECK_THROWS_WITH(f.run(o), Contains(f.dir.file("short.txt") + ": a text file of " +
                                             std::to_string(text.size()) + " token(s)") &&
                                        Contains("the last 10% of its tokens"));
        CHECK_FALSE(std::filesystem::exists(o.out));
    }
    // Beside a longer text the short one simply trains.
    o.inputs = {f.dir.file("short.txt"), f.dir.file("line.txt")};
    m = f.run(o);
    CHECK(m.val.documents == 1);
    CHECK(m.train[0].documents == 2);
}

TEST_CASE("text tails and JSON documents together: validation by tokens and by document",
          "[data]") {
    Fixture f;
    std::vector<std::string> json = numbered_docs(4);
    PrepareOptions o = f.options(json);
    const std::string a = test::synthetic_text(400, 21), b = test::synthetic_text(300, 22);
    test::write_text(f.dir.file("a.txt"), a);
    test::write_text(f.dir.file("b.txt"), b);
    o.inputs = {f.dir.file("a.txt"), f.dir.file("b.txt"), o.inputs[0]};
    o.islands = 2;
    o.val_fraction = 0.5;       // JSON documents 0 and 2
    o.text_val_fraction = 0.25;  // the last quarter of each text file's ids
    PrepareResult r = prepare(o, [](const PrepareProgress&) {});
    const Manifest& m = r.manifest;
    CHECK(r.text_tails == 2);
    std::vector<std::string> val = f.docs(m, m.val);
    REQUIRE(val.size() == 4);
    CHECK(val[2] == json[0]);
    CHECK(val[3] == json[2]);
    // Training parts are dealt round-robin with the whole documents, in input order.
    std::vector<std::string> i0 = f.docs(m, m.train[0]), i1 = f.docs(m, m.train[1]);
    REQUIRE(i0.size() == 2);
    REQUIRE(i1.size() == 2);
    CHECK(i0[0] + val[0] == a);
    CHECK(i1[0] + val[1] == b);
    CHECK(i0[1] == json[1]);
    CHECK(i1[1] == json[3]);
    auto tail = [&](const std::string& text) {  // its held-out ids and their <|endoftext|>
        return text_val_ids(f.tok.encode(text).size(), 0.25) + 1;
    };
    auto whole = [&](const std::string& text) { return f.tok.encode(text).size() + 1; };
    CHECK(m.val.tokens == tail(a) + tail(b) + whole(json[0]) + whole(json[2]));
}

TEST_CASE("domain: every site lands on exactly one island", "[data]") {
    Fixture f;
    std::vector<std::string> hosts = {"a.com", "b.org", "c.net", "d.io",
                                      "e.dev", "f.co",  "g.uk",  "h.de"};
    std::vector<std::string> texts, urls;
    Rng rng(3, 0);
    for (int i = 0; i < 60; i++) {
        std::string host = hosts[rng.below(hosts.size())];
        texts.push_back(std::to_string(i) + " from " + host);
        // The same site under other spellings: www., upper case, a port.
        urls.push_back(i % 3 == 0   ? "https://www." + host + "/p" + std::to_string(i)
                       : i % 3 == 1 ? "http://" + host + ":80/"
                                    : "HTTPS://" + host);
    }
    PrepareOptions o = f.options(texts, urls);
    o.islands = 3;
    o.val_docs = 0;
    o.split = SplitMethod::domain;
    Manifest m = f.run(o);
    std::map<std::string, std::set<int>> islands_of;
    size_t total = 0;
    for (int i = 0; i < 3; i++)
        for (const std::string& doc : f.docs(m, m.train[i])) {
            islands_of[doc.substr(doc.find(" from ") + 6)].insert(i);
            total++;
        }
    CHECK(total == 60);
    CHECK(islands_of.size() == hosts.size());
    for (const auto& [host, islands] : islands_of) {
        INFO(host);
        CHECK(islands.size() == 1);
        CHECK(*islands.begin() == site_island(host, 3));
    }
}

TEST_CASE("cluster: k obvious topics are recovered, deterministically", "[data]") {
    Fixture f;
    std::vector<std::string> all = topic_docs(20, 9);
    PrepareOptions o = f.options(all);
    o.islands = 3;
    o.val_docs = 0;
    o.split = SplitMethod::cluster;
    Manifest m = f.run(o);
    std::set<int> topics_seen;
    size_t total = 0;
    for (int i = 0; i < 3; i++) {
        std::vector<std::string> docs = f.docs(m, m.train[i]);
        REQUIRE(!docs.empty());
        std::set<int> topics;
        for (const std::string& d : docs) {
            int index = std::stoi(d.substr(4));
            topics.insert(index % 3);
            CHECK(d == all[index]);
        }
        INFO("island " << i);
        CHECK(topics.size() == 1);
        topics_seen.insert(*topics.begin());
        total += docs.size();
    }
    CHECK(topics_seen.size() == 3);
    CHECK(total == all.size());
    std::string first = read_file(m.shard_path(m.train[1].shards[0]));
    f.run(o);
    CHECK(read_file(m.shard_path(m.train[1].shards[0])) == first);
}

TEST_CASE("text clusters: a pure function of documents, k and seed", "[data]") {
    std::vector<std::string> docs = topic_docs(10, 4);
    std::vector<std::string_view> views(docs.begin(), docs.end());
    TextClusters a = TextClusters::fit(views, 3, 1), b = TextClusters::fit(views, 3, 1);
    std::set<int> used;
    for (const std::string& d : docs) {
        CHECK(a.assign(d) == b.assign(d));
        CHECK(a.assign(d) ==
              a.assign(docs[std::stoi(d.substr(4)) % 3]));  // same topic, same cluster
        used.insert(a.assign(d));
    }
    CHECK(used.size() == 3);
    CHECK(a.assign("") == 0);
    CHECK_THROWS_WITH(TextClusters::fit(views, 31, 1), Contains("30 documents into 31 clusters"));
}

TEST_CASE("prepare: a strict run stops at the first malformed line", "[data]") {
    Fixture f;
    PrepareOptions o = f.options(numbered_docs(5));
    test::write_text(o.inputs[0], read_file(o.inputs[0]) + "{oops\n");
    PrepareResult r = prepare(o, [](const PrepareProgress&) {});
    CHECK(r.read.malformed == 1);
    CHECK(r.manifest.malformed_lines == 1);
    CHECK_THAT(r.read.messages.at(0), Contains("in.jsonl:6:"));
    o.strict = true;
    CHECK_THROWS_WITH(prepare(o, [](const PrepareProgress&) {}), Contains("in.jsonl:6:"));
}
