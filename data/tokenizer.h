// Byte-level BPE tokenizer that encodes exactly like GPT-2 / tiktoken `encode_ordinary`: loading
// (GPT-2 encoder.json + vocab.bpe, Hugging Face tokenizer.json), encoding, decoding, saving.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace diloco {

// End (exclusive) of the GPT-2 pre-token that starts at text[pos], pos < text.size(): the match
// of 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ at pos. An
// invalid UTF-8 byte counts as one "other" character (as U+FFFD would), so it joins runs of
// punctuation and symbols, and every byte lands in exactly one pre-token.
size_t pretoken_end(std::string_view text, size_t pos);
std::vector<std::string_view> pretokenize(std::string_view text);

class Tokenizer {
public:
    using Merge = std::pair<int32_t, int32_t>;  // ids of the left and right token
    static constexpr std::string_view kEndOfText = "<|endoftext|>";

    // OpenAI's files: encoder.json maps byte-level text to ids, vocab.bpe holds "#version: 0.2"
    // then one merge "left right" per line in rank order.
    static Tokenizer load_gpt2(const std::string& encoder_json, const std::string& vocab_bpe);
    // A Hugging Face tokenizer.json of a ByteLevel BPE model (merges as "a b" or ["a", "b"]).
    static Tokenizer load_hf(const std::string& tokenizer_json);
    // A directory with tokenizer.json or encoder.json + vocab.bpe, or one of those files.
    static Tokenizer load(const std::string& path);
    // tokens[id] is the raw bytes of token id; merges in rank order; eot is the id of
    // <|endoftext|>. Every single byte needs a token and every merge result must be a token.
    static Tokenizer from_merges(std::vector<std::string> tokens, std::vector<Merge> merges,
                                 int32_t eot, const std::string& source);
    // Writes dir/encoder.json and dir/vocab.bpe (GPT-2 format; load_gpt2 reads them back), the
    // same under Hugging Face's names (vocab.json, merges.txt) and a tokenizer_config.json, so
    // that transformers' AutoTokenizer loads the directory too.
    void save_gpt2(const std::string& dir) const;

    // Ordinary text: "<|endoftext|>" in the text is encoded as text, like encode_ordinary.
    std::vector<int32_t> encode(std::string_view text) const;
    // The same, but each literal "<|endoftext|>" becomes eot().
    std::vector<int32_t> encode_with_special(std::string_view text) const;
    // encode() on `threads` threads, cutting the text only where the pre-tokens stay the same.
    std::vector<int32_t> encode_parallel(std::string_view text, int threads) const;
    // The bytes of the tokens; decode(encode(s)) == s for every byte string s.
    std::string decode(const std::vector<int32_t>& ids) const;

    int vocab_size() const;
    int eot() const;
    const std::string& token_bytes(int32_t id) const;
    const std::vector<Merge>& merges() const;
    // Where it came from (a file name, or what the trainer saw), for messages.
    const std::string& source() const;

    struct Model;  // opaque: the vocabulary and its lookup tables, shared by copies

private:
    friend class BatchEncoder;
    explicit Tokenizer(std::shared_ptr<const Model> model) : model_(std::move(model)) {}
    std::shared_ptr<const Model> model_;
};

// Writes dir/vocab.json, merges.txt and tokenizer_config.json for a byte-level model (256 ids,
// id = byte, no merges, no special token): AutoTokenizer then encodes text to its bytes.
void save_byte_vocab_hf(const std::string& dir);

// Encodes text after text with the same ids as Tokenizer::encode, but keeps its cache of merged
// pre-tokens between calls: words repeat across documents. Not thread-safe: one per thread.
class BatchEncoder {
public:
    explicit BatchEncoder(const Tokenizer& tok);
    ~BatchEncoder();
    // Appends the ids of text to out.
    void encode(std::string_view text, std::vector<int32_t>& out);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace diloco
