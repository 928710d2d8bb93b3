// Tests of the data commands as a user runs them: `diloco tokenizer` encode/decode/train,
// `diloco prepare` on the C4 sample under each split and on Tiny Shakespeare, each followed by
// `diloco train`, training on islands of a prepared set under mpirun, generating through the
// saved tokenizer, and errors.
#include <catch2/catch.hpp>
#include <filesystem>
#include <map>
#include <set>

#include "data/documents.h"
#include "data/island_split.h"
#include "data/manifest.h"
#include "data/prepare.h"
#include "test/data_helpers.h"
#include "test/helpers.h"
#include "test/skip.h"
#include "util/files.h"

using namespace diloco;
using Catch::Matchers::Contains;
using diloco::test::run_diloco;
using diloco::test::TempDir;

namespace {

const char* kC4 = "c4/c4-train.00000-of-01024.first1000.json.gz";
const char* kShakespeare = "tinyshakespeare/input.txt";

void check_one_line_error(const test::CliResult& r, const std::string& needle) {
    INFO("stderr: " << r.err);
    CHECK(r.exit_code != 0);
    CHECK_THAT(r.err, Contains(needle));
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
}

// Prepares the C4 sample for 4 islands and trains a few steps on it.
Manifest prepare_c4(const TempDir& dir, const std::string& split) {
    std::string c4 = test::shared_data(kC4), gpt2 = test::shared_data("gpt2");
    auto r = run_diloco("prepare --tokenizer " + gpt2 + " --out " + dir.file("p") +
                        " --islands 4 --split " + split + " " + c4);
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.out, Contains("1,000 documents") && Contains("486,006 tokens") &&
                          Contains("(" + split + " split)"));
    Manifest m = read_manifest(dir.file("p"));
    CHECK(m.val.documents == 10);
    uint64_t docs = m.val.documents, tokens = m.val.tokens;
    for (const ShardSet& s : m.train) {
        CHECK(s.documents > 0);
        CHECK(s.shards.size() == 1);
        docs += s.documents, tokens += s.tokens;
    }
    CHECK(docs == 1000);
    CHECK(tokens == 486006);  // every document and its <|endoftext|>, as in the reference
    auto t = run_diloco("train --data " + dir.file("p") +
                        " --steps 3 --batch 2 --seq 32 --val-batches 1 --warmup 1");
    INFO(t.err);
    CHECK(t.exit_code == 0);
    CHECK_THAT(t.out, Contains("vocabulary 50257") && Contains("val loss"));
    return m;
}

// A small prepared set: synthetic documents, a 300-token BPE, `islands` islands.
std::string prepare_small(const TempDir& dir, int islands) {
    test::small_tokenizer(dir.file("tok"));
    std::vector<std::string> docs;
    for (int i = 0; i < 40; i++) docs.push_back(test::synthetic_text(800, 100 + i));
    test::write_text(dir.file("in.jsonl"), test::jsonl(docs));
    auto r = run_diloco("prepare --tokenizer " + dir.file("tok") + " --out " + dir.file("p") +
                        " --islands " + std::to_string(islands) + " --val-docs 4 " +
                        dir.file("in.jsonl"));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    return dir.file("p");
}

}  // namespace

TEST_CASE("tokenizer encode and decode GPT-2 ids on stdin and stdout", "[data][cli]") {
    std::string gpt2 = test::shared_data("gpt2");
    TempDir dir;
    test::write_text(dir.file("text"), "Hello world");
    auto r = run_diloco("tokenizer encode --tokenizer " + gpt2, dir.file("text"));
    CHECK(r.exit_code == 0);
    CHECK(r.out == "15496 995\n");
    CHECK(run_diloco("tokenizer encode --eot --tokenizer " + gpt2, dir.file("text")).out ==
          "50256 15496 995\n");
    test::write_text(dir.file("ids"), "50256 15496\n 995\n");
    r = run_diloco("tokenizer decode --tokenizer " + gpt2, dir.file("ids"));
    CHECK(r.exit_code == 0);
    CHECK(r.out == "<|endoftext|>Hello world");
    test::write_text(dir.file("bad"), "15496 50257");
    check_one_line_error(run_diloco("tokenizer decode --tokenizer " + gpt2, dir.file("bad")),
                         "stdin: token 1 ('50257') is not an id");
}

TEST_CASE("tokenizer train writes files that encode and decode", "[data][cli]") {
    TempDir dir;
    std::filesystem::create_directories(dir.file("texts"));
    test::write_text(dir.file("texts/a.txt"), test::synthetic_text(30000, 1));
    test::write_gz(dir.file("b.jsonl.gz"), test::jsonl({test::synthetic_text(5000, 2)}) + "{bad\n");
    auto r = run_diloco("tokenizer train --vocab 320 --out " + dir.file("tok") + " " +
                        dir.file("texts") + " " + dir.file("b.jsonl.gz"));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.out, Contains("320 tokens (63 merges) from 2 documents"));
    CHECK_THAT(r.err, Contains("b.jsonl.gz:2: malformed JSON line skipped"));
    Tokenizer tok = Tokenizer::load(dir.file("tok"));
    CHECK(tok.vocab_size() == 320);
    test::write_text(dir.file("text"), "the island model learns \xff\xfe bytes");
    r = run_diloco("tokenizer encode --tokenizer " + dir.file("tok"), dir.file("text"));
    test::write_text(dir.file("ids"), r.out);
    CHECK(run_diloco("tokenizer decode --tokenizer " + dir.file("tok"), dir.file("ids")).out ==
          "the island model learns \xff\xfe bytes");
    check_one_line_error(
        run_diloco("tokenizer train --vocab 100 --out " + dir.file("t2") + " " + dir.file("texts")),
        "--vocab: '100' is not a whole number within 257..16777216");
}

TEST_CASE("prepare: the C4 sample with one island equals the reference ids", "[data][cli]") {
    std::string c4 = test::shared_data(kC4), gpt2 = test::shared_data("gpt2");
    std::string reference = test::shared_data("reference/c4-first1000.gpt2-eot.u16");
    TempDir dir;
    auto r = run_diloco("prepare --tokenizer " + gpt2 + " --val-docs 0 --out " + dir.file("p") +
                        " " + c4);
    REQUIRE(r.exit_code == 0);
    CHECK(read_file(dir.file("p/train_i0_000000.bin")).substr(1024) == read_file(reference));
    CHECK(std::filesystem::exists(dir.file("p/encoder.json")));
    CHECK(std::filesystem::exists(dir.file("p/vocab.bpe")));
}

TEST_CASE("prepare: C4 for 4 islands, iid split, then train", "[data][cli]") {
    TempDir dir;
    Manifest m = prepare_c4(dir, "iid");
    for (int i = 0; i < 4; i++) CHECK(m.train[i].documents == (i < 2 ? 248u : 247u));
}

TEST_CASE("prepare: C4 for 4 islands, domain split, then train", "[data][cli]") {
    TempDir dir;
    Manifest m = prepare_c4(dir, "domain");
    Tokenizer tok = Tokenizer::load(test::shared_data("gpt2"));
    std::map<std::string, std::string> host_of;
    DocumentReader reader({test::shared_data(kC4)}, "text", true);
    for (Document d; reader.next(d);) host_of[d.text] = url_host(d.url);
    std::map<std::string, std::set<int>> islands_of;
    for (int i = 0; i < 4; i++)
        for (const std::string& doc : test::split_documents(m, m.train[i], tok))
            islands_of[host_of.at(doc)].insert(i);
    for (const auto& [host, islands] : islands_of) {
        INFO(host);
        CHECK(islands.size() == 1);
    }
}

TEST_CASE("prepare: C4 for 4 islands, cluster split, then train", "[data][cli]") {
    TempDir dir;
    prepare_c4(dir, "cluster");
}

TEST_CASE("prepare: Tiny Shakespeare holds out its last tenth of tokens, then train",
          "[data][cli]") {
    std::string input = test::shared_data(kShakespeare), gpt2 = test::shared_data("gpt2");
    std::string reference = read_file(test::shared_data("reference/tinyshakespeare.gpt2.u16"));
    TempDir dir;
    auto r = run_diloco("prepare --tokenizer " + gpt2 + " --out " + dir.file("p") + " " + input);
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.out, Contains("validation 1 documents (1 text-file tail(s)), 33,804 tokens"));
    const uint64_t ids = Tokenizer::load(gpt2).encode(read_file(input)).size();
    CHECK(ids * 2 == reference.size());  // our count of the whole text is tiktoken's
    Manifest m = read_manifest(dir.file("p"));
    REQUIRE(m.train.size() == 1);
    CHECK(m.val.documents == 1);
    CHECK(m.train[0].documents == 1);
    CHECK(m.val.tokens == text_val_ids(ids, 0.1) + 1);
    CHECK(m.val.tokens + m.train[0].tokens == ids + 2);  // each part led by <|endoftext|>
    // The two parts hold the whole text's ids once, in order.
    REQUIRE(m.val.shards.size() == 1);
    REQUIRE(m.train[0].shards.size() == 1);
    std::string train = read_file(m.shard_path(m.train[0].shards[0])).substr(1024);
    std::string val = read_file(m.shard_path(m.val.shards[0])).substr(1024);
    const std::string eot = "\x50\xc4";  // 50256, little-endian
    CHECK(train.substr(0, 2) == eot);
    CHECK(val.substr(0, 2) == eot);
    CHECK(train.substr(2) + val.substr(2) == reference);
    auto t = run_diloco("train --data " + dir.file("p") +
                        " --steps 2 --batch 2 --seq 32 --val-batches 1 --warmup 1");
    INFO(t.err);
    CHECK(t.exit_code == 0);
    CHECK_THAT(t.out, Contains("vocabulary 50257") && Contains("val loss"));
}

TEST_CASE("prepare: text files keep invalid UTF-8 as bytes, in a JSON line it is malformed",
          "[data][cli]") {
    TempDir dir;
    Tokenizer tok = test::small_tokenizer(dir.file("tok"));
    const std::string text = test::synthetic_text(2000, 3) + " \xff\xfe bytes \xc3 kept";
    test::write_text(dir.file("bytes.txt"), text);
    std::string base = "prepare --tokenizer " + dir.file("tok") + " --out ";
    auto r = run_diloco(base + dir.file("p") + " " + dir.file("bytes.txt"));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    Manifest m = read_manifest(dir.file("p"));
    CHECK(test::split_documents(m, m.train[0], tok).at(0) +
              test::split_documents(m, m.val, tok).at(0) ==
          text);
    test::write_text(dir.file("bad.jsonl"), "{\"text\": \"bad \xff utf-8\"}\n");
    check_one_line_error(run_diloco(base + dir.file("q") + " --strict " + dir.file("bad.jsonl")),
                         dir.file("bad.jsonl") + ":1: malformed JSON line skipped (not valid "
                                                 "JSON or not UTF-8) (--strict)");
    CHECK_FALSE(std::filesystem::exists(dir.file("q")));
}

TEST_CASE("prepare: errors are one line naming the file", "[data][cli]") {
    TempDir dir;
    test::small_tokenizer(dir.file("tok"));
    std::string lines =
        test::jsonl({test::synthetic_text(100000, 1), test::synthetic_text(100000, 2)});
    test::write_gz(dir.file("good.jsonl.gz"), lines);
    std::string gz = read_file(dir.file("good.jsonl.gz"));
    for (size_t i = gz.size() / 2; i < gz.size() / 2 + 32; i++) gz[i] ^= 0x33;
    write_file_atomic(dir.file("bad.jsonl.gz"), gz);
    std::string base = "prepare --tokenizer " + dir.file("tok") + " --out " + dir.file("p") + " ";
    check_one_line_error(run_diloco(base + dir.file("bad.jsonl.gz")), dir.file("bad.jsonl.gz"));
    CHECK(!std::filesystem::exists(dir.file("p/manifest.json")));
    test::write_text(dir.file("m.jsonl"), lines + "not json\n");
    check_one_line_error(run_diloco(base + "--strict " + dir.file("m.jsonl")),
                         dir.file("m.jsonl") + ":3: malformed JSON line skipped");
    auto r = run_diloco(base + dir.file("m.jsonl"));
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.err, Contains(dir.file("m.jsonl") + ":3: malformed"));
    check_one_line_error(run_diloco(base + "--split topics " + dir.file("m.jsonl")),
                         "unknown split 'topics'");
    check_one_line_error(run_diloco(base + "--islands 5 " + dir.file("m.jsonl")),
                         "fewer than the 5 island(s)");

    // A text file: too short to hold out a tail, or one training part for two islands.
    std::string text_base = "prepare --tokenizer " + dir.file("tok") + " --out " + dir.file("t");
    test::write_text(dir.file("short.txt"), "a");
    check_one_line_error(run_diloco(text_base + " " + dir.file("short.txt")),
                         dir.file("short.txt") + ": a text file of 1 token(s) cannot give both");
    test::write_text(dir.file("book.txt"), test::synthetic_text(3000, 4));
    check_one_line_error(run_diloco(text_base + " --islands 2 " + dir.file("book.txt")),
                         "fewer than the 2 island(s); a set prepared for 1 island serves any");
    CHECK_FALSE(std::filesystem::exists(dir.file("t")));
}

TEST_CASE("train on prepared tokens, then generate through the saved tokenizer", "[data][cli]") {
    TempDir dir;
    std::string data = prepare_small(dir, 1);
    auto t = run_diloco("train --data " + data +
                        " --steps 2 --batch 2 --seq 16 --val-batches 1 "
                        "--warmup 1 --save " +
                        dir.file("ck"));
    INFO(t.err);
    REQUIRE(t.exit_code == 0);
    CHECK(std::filesystem::exists(dir.file("ck/encoder.json")));
    auto g = run_diloco("generate --checkpoint " + dir.file("ck") +
                        " --prompt 'the island' "
                        "--tokens 5");
    INFO(g.err);
    CHECK(g.exit_code == 0);
    CHECK(g.out.starts_with("the island"));
    std::filesystem::remove(dir.file("ck/encoder.json"));
    check_one_line_error(run_diloco("generate --checkpoint " + dir.file("ck")),
                         "no tokenizer (encoder.json) beside it");
}

TEST_CASE("train diloco on the islands of a prepared set under mpirun", "[data][cli][mpi]") {
    TempDir dir;
    std::string data = prepare_small(dir, 2);
    auto r = test::run_mpi(2, "train --data " + data +
                                  " --mode diloco --islands 2 "
                                  "--inner-steps 2 --steps 4 --batch 2 --seq 16 --val-batches 1 "
                                  "--warmup 1");
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.out, Contains("island 0 of 2 (iid split)"));
    auto bad = test::run_mpi(2, "train --data " + prepare_small(dir, 3) +
                                    " --mode diloco "
                                    "--islands 2 --inner-steps 2 --steps 4 --batch 2 --seq 16");
    CHECK(bad.exit_code != 0);
    CHECK_THAT(bad.err, Contains("prepared for 3 islands"));
}
