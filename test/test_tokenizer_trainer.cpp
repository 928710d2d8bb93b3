// Tests of the BPE trainer: the order of merges on a hand-checked text, determinism, the layout of
// the vocabulary, the save/load round trip, and a full-size run on Tiny Shakespeare.
#include <catch2/catch.hpp>

#include "data/bpe_trainer.h"
#include "test/helpers.h"
#include "test/skip.h"
#include "util/error.h"
#include "util/files.h"

using namespace diloco;
using diloco::test::TempDir;

namespace {

std::vector<std::string> merge_names(const Tokenizer& tok) {
    std::vector<std::string> names;
    for (auto [a, b] : tok.merges()) names.push_back(tok.token_bytes(a) + "+" + tok.token_bytes(b));
    return names;
}

}  // namespace

// Pre-tokens "hello", " hello" x2, " world": pairs inside "hello" count 3 and tie, and ties go to
// the smallest (left bytes, right bytes); pairs never cross pre-tokens.
TEST_CASE("the trainer merges the most frequent pair, ties by bytes", "[tokenizer]") {
    Tokenizer tok = train_bpe("hello hello hello world", 263);
    CHECK(merge_names(tok) ==
          std::vector<std::string>{"e+l", "el+l", "ell+o", "h+ello", " +hello", " +w"});
    CHECK(tok.vocab_size() == 263);
    CHECK(tok.eot() == 262);
    CHECK(tok.token_bytes(tok.eot()) == "<|endoftext|>");
    CHECK(tok.token_bytes('A') == "A");  // token b is byte b
    CHECK(tok.encode("hello hello") == std::vector<int32_t>{259, 260});
}

TEST_CASE("the trainer stops when no pair is left", "[tokenizer]") {
    Tokenizer tok = train_bpe("ab ab", 1000);
    CHECK(merge_names(tok) == std::vector<std::string>{"a+b", " +ab"});
    CHECK(tok.vocab_size() == 259);
    CHECK_THROWS_AS(train_bpe("ab", 256), Error);
}

TEST_CASE("the trainer is deterministic and its files load back", "[tokenizer]") {
    std::string text = test::synthetic_text(200000, 5) + "caf\xc3\xa9 \xff\xfe 12345 'tis\n";
    Tokenizer a = train_bpe(text, 350), b = train_bpe(text, 350);
    CHECK(a.merges() == b.merges());
    CHECK(a.vocab_size() == 350);
    TempDir dir;
    a.save_gpt2(dir.file("a"));
    b.save_gpt2(dir.file("b"));
    for (const char* name : {"/encoder.json", "/vocab.bpe"})
        CHECK(read_file(dir.file("a") + name) == read_file(dir.file("b") + name));
    Tokenizer loaded = Tokenizer::load(dir.file("a"));
    CHECK(loaded.vocab_size() == a.vocab_size());
    CHECK(loaded.eot() == a.eot());
    CHECK(loaded.merges() == a.merges());
    for (int id = 0; id < a.vocab_size(); id++)
        REQUIRE(loaded.token_bytes(id) == a.token_bytes(id));
    std::vector<int32_t> ids = a.encode(text);
    CHECK(loaded.encode(text) == ids);
    CHECK(a.decode(ids) == text);
    CHECK(ids.size() < text.size() / 3);
}

TEST_CASE("the trainer learns 8,000 tokens of Tiny Shakespeare quickly", "[tokenizer]") {
    std::string text = read_file(test::shared_data("tinyshakespeare/input.txt"));
    Tokenizer tok = train_bpe(text, 8000);
    CHECK(tok.vocab_size() == 8000);
    CHECK(tok.merges().size() == 8000 - 257);
    std::vector<int32_t> ids = tok.encode(text);
    CHECK(tok.decode(ids) == text);
    CHECK(ids.size() < 340000);  // about as many tokens as GPT-2's 50,257 need for this text
}
