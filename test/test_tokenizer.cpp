// Tests of the GPT-2 tokenizer: pre-tokenisation against the regex, exactness against tiktoken's
// ids for Tiny Shakespeare and C4, round trips of any bytes, parallel encoding, files and errors.
#include <zlib.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "data/bpe_trainer.h"
#include "data/tokenizer.h"
#include "data/unicode.h"
#include "test/helpers.h"
#include "test/skip.h"
#include "util/error.h"
#include "util/files.h"
#include "util/rng.h"

using namespace diloco;
using Catch::Matchers::Contains;
using diloco::test::TempDir;

namespace {

Tokenizer gpt2() {
    return Tokenizer::load_gpt2(test::shared_data("gpt2/encoder.json"),
                                test::shared_data("gpt2/vocab.bpe"));
}

// A reference file of raw little-endian uint16 token ids.
std::vector<int32_t> read_u16(const std::string& path) {
    std::string bytes = read_file(path);
    std::vector<int32_t> ids(bytes.size() / 2);
    for (size_t i = 0; i < ids.size(); i++)
        ids[i] = static_cast<uint8_t>(bytes[2 * i]) | static_cast<uint8_t>(bytes[2 * i + 1]) << 8;
    return ids;
}

// The "text" of each line of a JSON-lines .gz file.
std::vector<std::string> read_jsonl_gz_texts(const std::string& path) {
    gzFile f = gzopen(path.c_str(), "rb");
    REQUIRE(f != nullptr);
    std::string all;
    char buf[1 << 16];
    for (int n; (n = gzread(f, buf, sizeof buf)) > 0;) all.append(buf, n);
    gzclose(f);
    std::vector<std::string> texts;
    for (size_t pos = 0, end; pos < all.size(); pos = end + 1) {
        end = std::min(all.find('\n', pos), all.size());
        if (end > pos) texts.push_back(nlohmann::json::parse(all.substr(pos, end - pos))["text"]);
    }
    return texts;
}

std::string show(const Tokenizer& tok, const std::vector<int32_t>& ids, size_t from, size_t to) {
    std::string s;
    for (size_t i = from; i < std::min(to, ids.size()); i++)
        s += std::to_string(ids[i]) + "=" + nlohmann::json(tok.decode({ids[i]})).dump() + " ";
    return s;
}

// Token-for-token equality; on failure, the first mismatch with a few tokens of context.
void require_same_ids(const Tokenizer& tok, const std::vector<int32_t>& got,
                      const std::vector<int32_t>& want) {
    size_t i = 0;
    while (i < got.size() && i < want.size() && got[i] == want[i]) i++;
    if (i == got.size() && i == want.size()) return;
    size_t from = i < 5 ? 0 : i - 5;
    FAIL("first mismatch at token " << i << " of " << want.size() << " (got " << got.size()
                                    << ")\n  want: " << show(tok, want, from, i + 5)
                                    << "\n  got:  " << show(tok, got, from, i + 5));
}

std::vector<std::string> pieces(std::string_view text) {
    std::vector<std::string> out;
    for (std::string_view p : pretokenize(text)) out.emplace_back(p);
    return out;
}

// Byte strings rich in invalid UTF-8: random bytes, broken and whole multi-byte sequences.
std::string random_bytes(Rng& rng, size_t max_len) {
    static const char* atoms[] = {"a",
                                  " ",
                                  "\n",
                                  "'",
                                  "s",
                                  "7",
                                  "\xc3\xa9",
                                  "\xe4\xb8\xad",
                                  "\xf0\x9f\x98\x80",
                                  "\xc3",
                                  "\xe4\xb8",
                                  "\x80",
                                  "\xed\xa0\x80",
                                  "\xc0\xaf",
                                  "\xf4\x90\x80\x80",
                                  "\xff"};
    std::string s;
    for (size_t n = rng.below(max_len + 1); s.size() < n;) {
        if (rng.below(3) == 0)
            s += static_cast<char>(rng.below(256));
        else
            s += atoms[rng.below(sizeof(atoms) / sizeof(atoms[0]))];
    }
    return s;
}

}  // namespace

TEST_CASE("pre-tokens match the GPT-2 regex", "[tokenizer]") {
    using V = std::vector<std::string>;
    CHECK(pieces("Hello world") == V{"Hello", " world"});
    CHECK(pieces("I'm don't we'll they've she'd you're it's 'S") ==
          V{"I", "'m", " don", "'t", " we", "'ll", " they", "'ve", " she", "'d", " you", "'re",
            " it", "'s", " '", "S"});
    CHECK(pieces("  'twas") == V{" ", " '", "twas"});
    CHECK(pieces("abc123def 42!! ?") == V{"abc", "123", "def", " 42", "!!", " ?"});
    // \s+(?!\S): a run before a non-space gives back its last char; a run at the end does not.
    CHECK(pieces("a  b") == V{"a", " ", " b"});
    CHECK(pieces("a\n\nb") == V{"a", "\n", "\n", "b"});
    CHECK(pieces("\t\tx") == V{"\t", "\t", "x"});
    CHECK(pieces("x   ") == V{"x", "   "});
    CHECK(pieces("end.\r\n  next\u3000\u3000z") ==
          V{"end", ".", "\r\n ", " next", "\u3000", "\u3000", "z"});
    // Unicode classes: letters of any script, numbers of any kind, a combining mark is "other",
    // and U+00A0 is white space but not the optional leading space.
    CHECK(pieces("Stra\u00dfe \u4e2d\u6587 \U0001F600\U0001F600") ==
          V{"Stra\u00dfe", " \u4e2d\u6587", " \U0001F600\U0001F600"});
    CHECK(pieces("e\u0301 x") == V{"e", "\u0301", " x"});
    CHECK(pieces("\u00a0x \u00a0 y") == V{"\u00a0", "x", " \u00a0", " y"});
    CHECK(pieces("\u216b\u00bd\u00b2 x\u00b2") == V{"\u216b\u00bd\u00b2", " x", "\u00b2"});
    CHECK(pieces("") == V{});
}

TEST_CASE("the Unicode tables know letters, numbers and white space", "[tokenizer]") {
    CHECK(std::string(kUnicodeVersion) == "15.0.0");
    CHECK(char_class('a') == CharClass::kLetter);
    CHECK(char_class(0x4E2D) == CharClass::kLetter);   // CJK, inside a First/Last range
    CHECK(char_class(0x20000) == CharClass::kLetter);  // CJK extension B, above the BMP
    CHECK(char_class(0x0663) == CharClass::kNumber);   // Arabic-Indic three
    CHECK(char_class(0x2028) == CharClass::kSpace);
    CHECK(char_class(0x001C) == CharClass::kOther);  // Python's isspace() says yes; \s does not
    CHECK(char_class(0x1F600) == CharClass::kOther);
    CHECK(char_class(0x110000) == CharClass::kOther);
}

// Invalid UTF-8: each invalid byte is one unit of class "other", so the pre-tokens are those of
// the same text with U+FFFD in place of each invalid byte.
TEST_CASE("invalid UTF-8 pre-tokenises like U+FFFD", "[tokenizer]") {
    auto units = [](std::string_view s) {
        std::vector<std::string> out;  // the units of each pre-token, invalid bytes as U+FFFD
        for (std::string_view p : pretokenize(s)) {
            std::string piece;
            for (size_t i = 0; i < p.size();) {
                Unit u = next_unit(reinterpret_cast<const uint8_t*>(p.data()) + i, p.size() - i);
                bool invalid = u.len == 1 && static_cast<uint8_t>(p[i]) >= 0x80;
                piece += invalid ? std::string("\xef\xbf\xbd") : std::string(p.substr(i, u.len));
                i += u.len;
            }
            out.push_back(piece);
        }
        return out;
    };
    auto replaced = [&](std::string_view s) {
        std::string r;
        for (const std::string& p : units(s)) r += p;
        return r;
    };
    CHECK(pieces("a\xff\xfe b") == std::vector<std::string>{"a", "\xff\xfe", " b"});
    CHECK(pieces(" \x80x\xc3") == std::vector<std::string>{" \x80", "x", "\xc3"});
    Rng rng(7, 0);
    for (int i = 0; i < 3000; i++) {
        std::string s = random_bytes(rng, 40);
        INFO(nlohmann::json(replaced(s)).dump());
        REQUIRE(units(s) == pieces(replaced(s)));
    }
}

TEST_CASE("GPT-2: Hello world", "[tokenizer]") {
    Tokenizer tok = gpt2();
    CHECK(tok.vocab_size() == 50257);
    CHECK(tok.eot() == 50256);
    CHECK(tok.encode("Hello world") == std::vector<int32_t>{15496, 995});
    CHECK(tok.decode({15496, 995}) == "Hello world");
    CHECK(tok.encode("<|endoftext|>") != std::vector<int32_t>{50256});
    CHECK(tok.encode_with_special("a<|endoftext|>b<|endoftext|>") ==
          std::vector<int32_t>{64, 50256, 65, 50256});
    CHECK(tok.decode({50256}) == "<|endoftext|>");
    CHECK_THROWS_AS(tok.decode({50257}), Error);
}

TEST_CASE("GPT-2 ids equal tiktoken's for Tiny Shakespeare", "[tokenizer]") {
    Tokenizer tok = gpt2();
    std::string text = read_file(test::shared_data("tinyshakespeare/input.txt"));
    std::vector<int32_t> want = read_u16(test::shared_data("reference/tinyshakespeare.gpt2.u16"));
    REQUIRE(want.size() == 338025);
    require_same_ids(tok, tok.encode(text), want);
    for (int threads : {2, 3, 8}) require_same_ids(tok, tok.encode_parallel(text, threads), want);
    CHECK(tok.decode(want) == text);
}

TEST_CASE("GPT-2 ids equal tiktoken's for 1,000 C4 documents", "[tokenizer]") {
    Tokenizer tok = gpt2();
    std::vector<std::string> docs =
        read_jsonl_gz_texts(test::shared_data("c4/c4-train.00000-of-01024.first1000.json.gz"));
    std::vector<int32_t> want = read_u16(test::shared_data("reference/c4-first1000.gpt2-eot.u16"));
    REQUIRE(docs.size() == 1000);
    REQUIRE(want.size() == 486006);
    std::vector<int32_t> got;
    std::string joined;
    for (const std::string& doc : docs) {
        got.push_back(tok.eot());
        std::vector<int32_t> ids = tok.encode(doc);
        got.insert(got.end(), ids.begin(), ids.end());
        joined += std::string(Tokenizer::kEndOfText) + doc;
    }
    require_same_ids(tok, got, want);
    require_same_ids(tok, tok.encode_with_special(joined), want);
}

TEST_CASE("encode_parallel equals encode, wherever the cuts fall", "[tokenizer]") {
    Tokenizer tok = gpt2();
    Rng rng(3, 0);
    // Runs of white space next to every kind of character, so a careless cut would show.
    static const char* atoms[] = {"word", " word", "  ", "\n",           "\n\n", " \n",      "\t",
                                  "42",   ".",     "'s", "\xe4\xb8\xad", "\xff", " \xc2\xa0"};
    std::string text;
    while (text.size() < (1 << 19)) text += atoms[rng.below(sizeof(atoms) / sizeof(atoms[0]))];
    std::vector<int32_t> want = tok.encode(text);
    for (int threads : {1, 2, 3, 5, 16})
        require_same_ids(tok, tok.encode_parallel(text, threads), want);
    // No safe cut at all: one share.
    std::string blank(300000, '\n');
    require_same_ids(tok, tok.encode_parallel(blank, 4), tok.encode(blank));
    CHECK(tok.decode(tok.encode_parallel(text, 4)) == text);
}

TEST_CASE("GPT-2 round-trips any bytes", "[tokenizer]") {
    Tokenizer tok = gpt2();
    Rng rng(11, 0);
    for (int i = 0; i < 3000; i++) {
        std::string s = random_bytes(rng, 64);
        REQUIRE(tok.decode(tok.encode(s)) == s);
    }
    for (const char* s : {"I'm sure they'll've done it, haven't they?", "1234567890 3.14159 1e-9",
                          "\u4e2d\u6587\u5b57\u7b26 \u65e5\u672c\u8a9e \ud55c\uad6d\uc5b4",
                          "\U0001F600\U0001F44D\U0001F3FD \U0001F1FA\U0001F1F8 \u2764\ufe0f",
                          "e\u0301 a\u0308 n\u0303\u0331", "\t\ttabs\n\n\nnewlines    spaces   ",
                          "\r\n\u00a0\u2003\u3000\u2028", "<|endoftext|> <|endoftext|>"})
        CHECK(tok.decode(tok.encode(s)) == s);
    // A megabyte-long pre-token stays fast: the merge is O(n log n).
    std::string run(1 << 20, 'a');
    CHECK(tok.decode(tok.encode(run)) == run);
}

// tiktoken merges two parts whenever their concatenation is a token, lowest rank first, even when
// that exact pair is not a listed merge; GPT-2's encoder.py would stop at "a" "bc" here.
TEST_CASE("merges follow tiktoken: any split of a token merges", "[tokenizer]") {
    std::vector<std::string> tokens;
    for (int b = 0; b < 256; b++) tokens.emplace_back(1, static_cast<char>(b));
    for (const char* t : {"bc", "ab", "abc", "<|endoftext|>"}) tokens.emplace_back(t);
    Tokenizer tok =
        Tokenizer::from_merges(tokens, {{'b', 'c'}, {'a', 'b'}, {257, 'c'}}, 259, "toy");
    CHECK(tok.encode("abc") == std::vector<int32_t>{258});
    CHECK(tok.encode("abcabc") == std::vector<int32_t>{258, 258});
    CHECK(tok.encode("abd") == std::vector<int32_t>{257, 'd'});
}

TEST_CASE("load_hf reads a tokenizer.json of the GPT-2 vocabulary", "[tokenizer]") {
    Tokenizer ref = gpt2();
    nlohmann::json vocab = nlohmann::json::parse(read_file(test::shared_data("gpt2/encoder.json")));
    std::string bpe = read_file(test::shared_data("gpt2/vocab.bpe"));
    nlohmann::json merges = nlohmann::json::array();
    for (size_t pos = bpe.find('\n') + 1, end; pos < bpe.size(); pos = end + 1) {
        end = bpe.find('\n', pos);
        std::string line = bpe.substr(pos, end - pos);
        size_t space = line.find(' ');
        // Both spellings of a merge: the older "a b" and the newer ["a", "b"].
        if (merges.size() % 2)
            merges.push_back(line);
        else
            merges.push_back({line.substr(0, space), line.substr(space + 1)});
    }
    nlohmann::json doc = {
        {"version", "1.0"},
        {"added_tokens", {{{"id", 50256}, {"content", "<|endoftext|>"}, {"special", true}}}},
        {"pre_tokenizer", {{"type", "ByteLevel"}}},
        {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}}};
    TempDir dir;
    write_file_atomic(dir.file("tokenizer.json"), doc.dump());
    Tokenizer tok = Tokenizer::load(dir.path());
    std::string text = read_file(test::shared_data("tinyshakespeare/input.txt")).substr(0, 200000);
    CHECK(tok.vocab_size() == 50257);
    CHECK(tok.eot() == 50256);
    CHECK(tok.merges() == ref.merges());
    require_same_ids(tok, tok.encode(text), ref.encode(text));
}

TEST_CASE("load finds the files by directory or by name", "[tokenizer]") {
    std::string encoder = test::shared_data("gpt2/encoder.json");
    std::string dir = encoder.substr(0, encoder.rfind('/'));
    for (const std::string& path : {dir, encoder, dir + "/vocab.bpe"})
        CHECK(Tokenizer::load(path).encode(" world") == std::vector<int32_t>{995});
    TempDir empty;
    CHECK_THROWS_WITH(Tokenizer::load(empty.path()),
                      Contains(empty.path()) && Contains("neither tokenizer.json"));
    CHECK_THROWS_WITH(Tokenizer::load(empty.file("gpt2")), Contains("gpt2: not found"));
    write_file_atomic(empty.file("tok.model"), "?");
    CHECK_THROWS_WITH(Tokenizer::load(empty.file("tok.model")), Contains("not a tokenizer"));
}

TEST_CASE("bad tokenizer files give an Error naming the file", "[tokenizer]") {
    TempDir dir;
    const std::string text = "hello hello world";
    Tokenizer trained = train_bpe(text, 262);
    trained.save_gpt2(dir.path());  // a small valid pair of files
    std::string enc = dir.file("encoder.json"), bpe = dir.file("vocab.bpe");
    std::string good_enc = read_file(enc), good_bpe = read_file(bpe);
    auto load_with = [&](const std::string& encoder, const std::string& merges) {
        write_file_atomic(enc, encoder);
        write_file_atomic(bpe, merges);
        return Tokenizer::load_gpt2(enc, bpe);
    };
    CHECK(load_with(good_enc, good_bpe).encode(text) == trained.encode(text));
    CHECK_THROWS_WITH(Tokenizer::load_gpt2(dir.file("missing.json"), bpe),
                      Contains("missing.json") && Contains("cannot open"));
    CHECK_THROWS_WITH(load_with("{\"a\": 0,", good_bpe),
                      Contains(enc) && Contains("malformed JSON"));
    CHECK_THROWS_WITH(load_with("{\"a\": \"zero\"}", good_bpe),
                      Contains(enc) && Contains("has id"));
    CHECK_THROWS_WITH(load_with("{\"a\": 0}", good_bpe),
                      Contains(enc) && Contains("<|endoftext|>"));
    std::string body = good_bpe.substr(good_bpe.find('\n'));
    CHECK_THROWS_WITH(load_with(good_enc, "#version: 0.3" + body),
                      Contains(bpe) && Contains("expected \"#version: 0.2\""));
    CHECK_THROWS_WITH(load_with(good_enc, good_bpe + "zz qq\n"),
                      Contains(bpe + ":") && Contains("unknown token \"zz\""));
    CHECK_THROWS_WITH(load_with(good_enc, good_bpe + "hello\n"),
                      Contains(bpe + ":") && Contains("expected \"left right\""));
    // "h" + "e" is a listed pair, but "he" is no token of this encoder.json.
    CHECK_THROWS_WITH(load_with(good_enc, good_bpe + "h e\n"),
                      Contains(bpe) && Contains("not in the vocabulary"));

    std::string hf = dir.file("tokenizer.json");
    write_file_atomic(hf, R"({"model": {"type": "WordPiece", "vocab": {}}})");
    CHECK_THROWS_WITH(Tokenizer::load(hf), Contains(hf) && Contains("expected \"BPE\""));
    write_file_atomic(hf,
                      R"({"model": {"vocab": {"a": 0, "<|endoftext|>": 1}, "merges": ["a b"]}})");
    CHECK_THROWS_WITH(Tokenizer::load(hf), Contains(hf) && Contains("unknown token \"b\""));
    write_file_atomic(hf, R"([1, 2])");
    CHECK_THROWS_WITH(Tokenizer::load(hf), Contains(hf) && Contains("no \"model\""));
    CHECK_THROWS_WITH(Tokenizer::from_merges({"a", "<|endoftext|>"}, {}, 1, "toy"),
                      Contains("toy") && Contains("no token for byte 0"));
}
