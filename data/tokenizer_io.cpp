// Tokenizer files: OpenAI's GPT-2 encoder.json + vocab.bpe (read and written), Hugging Face
// tokenizer.json (read) and vocab.json + merges.txt (written), with GPT-2's byte-level text,
// which spells each byte as a printable char.
#include <algorithm>
#include <array>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "data/tokenizer.h"  // the loaders and the writer below are members of Tokenizer
#include "data/unicode.h"
#include "util/error.h"
#include "util/files.h"
#include "util/json_file.h"

namespace diloco {

using json = nlohmann::json;

// ---------------------------------------------------------------------------------------------
// Byte-level text. The printable bytes '!'..'~', 0xA1..0xAC and 0xAE..0xFF stand for the code
// points of the same value; the other 68 bytes, in byte order, for U+0100, U+0101, ...

static bool printable_byte(int b) {
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

static const std::array<uint32_t, 256>& byte_chars() {
    static const std::array<uint32_t, 256> chars = [] {
        std::array<uint32_t, 256> c{};
        uint32_t next = 0x100;
        for (int b = 0; b < 256; b++) c[b] = printable_byte(b) ? b : next++;
        return c;
    }();
    return chars;
}

static std::string to_byte_level(std::string_view bytes) {
    std::string text;
    for (char ch : bytes) {
        uint32_t cp = byte_chars()[static_cast<uint8_t>(ch)];  // below U+0800: one or two bytes
        if (cp < 0x80) {
            text += static_cast<char>(cp);
        } else {
            text += static_cast<char>(0xC0 | (cp >> 6));
            text += static_cast<char>(0x80 | (cp & 0x3F));
        }
    }
    return text;
}

// text as a JSON string for messages; bytes that are not UTF-8 (a corrupt vocab.bpe) become
// U+FFFD instead of making the message itself throw.
static std::string json_quoted(std::string_view text) {
    return json(std::string(text)).dump(-1, ' ', false, json::error_handler_t::replace);
}

// The bytes spelled by byte-level text; an Error (naming `where`) for a char that spells none.
static std::string from_byte_level(std::string_view text, const std::string& where) {
    static const std::array<int16_t, 0x144> byte_of = [] {
        std::array<int16_t, 0x144> b;
        b.fill(-1);
        for (int i = 0; i < 256; i++) b[byte_chars()[i]] = static_cast<int16_t>(i);
        return b;
    }();
    std::string bytes;
    for (size_t pos = 0; pos < text.size();) {
        Unit u = next_unit(reinterpret_cast<const uint8_t*>(text.data()) + pos, text.size() - pos);
        if (u.cp >= byte_of.size() || byte_of[u.cp] < 0)
            throw Error(where + ": token " + json_quoted(text) +
                        " is not GPT-2 byte-level text");
        bytes += static_cast<char>(byte_of[u.cp]);
        pos += u.len;
    }
    return bytes;
}

// ---------------------------------------------------------------------------------------------
// Reading.

// Tokens by id from {"byte-level text": id, ...}; names in `verbatim` (special tokens) are their
// own bytes. Ids must be 0, 1, ..., n - 1, each once.
static std::vector<std::string> read_vocab(const json& vocab,
                                           const std::vector<std::string>& verbatim,
                                           const std::string& path) {
    require(vocab.is_object(), path + ": the vocabulary is not a JSON object of token -> id");
    std::vector<std::string> tokens(vocab.size());
    std::vector<bool> seen(vocab.size());
    for (const auto& item : vocab.items()) {
        const std::string& name = item.key();
        const json& id = item.value();
        int64_t i = id.is_number_integer() ? id.get<int64_t>() : -1;
        if (i < 0 || i >= static_cast<int64_t>(tokens.size()) || seen[i])
            throw Error(path + ": token " + json_quoted(name) + " has id " + id.dump() +
                        "; ids must be 0, 1, ..., n - 1 for n tokens, each once");
        bool special = std::find(verbatim.begin(), verbatim.end(), name) != verbatim.end();
        tokens[i] = special ? name : from_byte_level(name, path);
        seen[i] = true;
    }
    return tokens;
}

// Where a merge came from, for messages: "file:line" or "file: merge i".
using Where = std::string (*)(const std::string& path, size_t index);

static std::string line_of(const std::string& path, size_t line) {
    return path + ":" + std::to_string(line);
}
static std::string merge_of(const std::string& path, size_t i) {
    return path + ": merge " + std::to_string(i);
}

static int32_t token_id(const json& vocab, const std::string& name, const std::string& path,
                        Where where, size_t index) {
    auto it = vocab.find(name);
    if (it == vocab.end()) throw Error(where(path, index) + ": unknown token " + json_quoted(name));
    return it->get<int32_t>();
}

// A merge by id: its two parts and the token it makes.
struct ParsedMerge {
    int32_t left, right, result;
};

// The merge of byte-level names left and right: both and their concatenation must be tokens.
static ParsedMerge merge_of_names(const std::string& left, const std::string& right,
                                  const json& vocab, const std::string& path, Where where,
                                  size_t index) {
    const int32_t l = token_id(vocab, left, path, where, index);
    const int32_t r = token_id(vocab, right, path, where, index);
    auto it = vocab.find(left + right);
    if (it == vocab.end())
        throw Error(where(path, index) + ": merges " + json_quoted(left) + " and " +
                    json_quoted(right) + " into " + json_quoted(left + right) +
                    ", which is not in the vocabulary");
    return {l, r, it->get<int32_t>()};
}

// "left right": the two byte-level names of a merge (they never contain a space).
static ParsedMerge parse_merge(std::string_view line, const json& vocab, const std::string& path,
                               Where where, size_t index) {
    size_t space = line.find(' ');
    if (space == std::string_view::npos || line.find(' ', space + 1) != std::string_view::npos)
        throw Error(where(path, index) + ": expected \"left right\", found " +
                    json_quoted(line));
    return merge_of_names(std::string(line.substr(0, space)), std::string(line.substr(space + 1)),
                          vocab, path, where, index);
}

// BPE training makes its tokens in one order, which GPT-2's files and ours keep: the 256 byte
// tokens first, then one new token per merge, ids ascending with rank, each merge joining tokens
// made before it. A file that breaks it was cut short, reordered or edited, and would encode to
// other ids without a word, so it is refused.
class MergeOrder {
public:
    // special[id]: a token no merge makes (<|endoftext|>, Hugging Face's added tokens).
    MergeOrder(const std::vector<std::string>& tokens, std::vector<bool> special)
        : tokens_(tokens), special_(std::move(special)), made_(tokens.size()) {
        for (size_t id = 0; id < tokens.size(); id++) {
            if (special_[id]) specials_++;
            if (special_[id] || tokens[id].size() != 1) continue;
            made_[id] = true;
            last_ = std::max(last_, static_cast<int32_t>(id));
        }
    }

    void add(const ParsedMerge& m, const std::string& where) {
        require(!special_[m.result], where + ": makes the special token " + name(m.result));
        require(!made_[m.result], where + ": makes token " + name(m.result) +
                                      ", which a byte or an earlier merge already makes");
        require(m.result > last_,
                where + ": makes token " + name(m.result) + " after token " +
                    std::to_string(last_) + "; the ids of merged tokens must ascend with rank, after the 256 bytes "
                    "(the merges are out of order)");
        for (int32_t part : {m.left, m.right})
            require(made_[part], where + ": joins token " + name(part) +
                                     ", which no byte or earlier merge makes (the merges are "
                                     "out of order)");
        made_[m.result] = true;
        last_ = m.result;
        merges_++;
    }

    // Every token is a byte, a special token or the result of one merge.
    void require_complete(const std::string& path) const {
        const size_t want = tokens_.size() - 256 - specials_;
        require(merges_ == want,
                path + ": " + std::to_string(merges_) + " merges for a vocabulary of " +
                    std::to_string(tokens_.size()) + " tokens (256 bytes, " +
                    std::to_string(specials_) + " special); expected " + std::to_string(want) +
                    ", one per other token (is the file cut short?)");
    }

private:
    std::string name(int32_t id) const {
        return std::to_string(id) + " " +
               json_quoted(special_[id] ? tokens_[id] : to_byte_level(tokens_[id]));
    }
    const std::vector<std::string>& tokens_;
    std::vector<bool> special_;
    std::vector<bool> made_;
    int32_t last_ = -1;
    size_t specials_ = 0, merges_ = 0;
};

// special[id] for the tokens of vocab named in `names`.
static std::vector<bool> special_ids(const json& vocab, const std::vector<std::string>& names) {
    std::vector<bool> special(vocab.size());
    for (const std::string& n : names)
        if (auto it = vocab.find(n); it != vocab.end()) special[it->get<int32_t>()] = true;
    return special;
}

static std::vector<Tokenizer::Merge> read_vocab_bpe(const std::string& path, const json& vocab,
                                                    MergeOrder& order) {
    std::string text = read_file(path, kMaxTokenizerFileBytes);
    std::vector<Tokenizer::Merge> merges;
    size_t line_no = 0;
    for (size_t pos = 0; pos < text.size();) {
        size_t end = std::min(text.find('\n', pos), text.size());
        std::string_view line = std::string_view(text).substr(pos, end - pos);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        pos = end + 1;
        if (++line_no == 1) {
            require(line == "#version: 0.2", path + ": first line is " +
                                                 json_quoted(line) +
                                                 ", expected \"#version: 0.2\"");
        } else if (!line.empty()) {
            const ParsedMerge m = parse_merge(line, vocab, path, line_of, line_no);
            order.add(m, line_of(path, line_no));
            merges.push_back({m.left, m.right});
        }
    }
    require(line_no > 0, path + ": empty file, expected \"#version: 0.2\" and merges");
    order.require_complete(path);
    return merges;
}

Tokenizer Tokenizer::load_gpt2(const std::string& encoder_json, const std::string& vocab_bpe) {
    json vocab = read_json_file(encoder_json, kMaxTokenizerFileBytes);
    const std::string eot_name(kEndOfText);
    std::vector<std::string> tokens = read_vocab(vocab, {eot_name}, encoder_json);
    require(vocab.contains(eot_name), encoder_json + ": no " + eot_name + " token");
    int32_t eot = vocab[eot_name].get<int32_t>();
    MergeOrder order(tokens, special_ids(vocab, {eot_name}));
    std::vector<Merge> merges = read_vocab_bpe(vocab_bpe, vocab, order);
    return from_merges(std::move(tokens), std::move(merges), eot, encoder_json + " + " + vocab_bpe);
}

// Hugging Face keeps added tokens (<|endoftext|>, ...) in the vocabulary under their plain text.
static std::vector<std::string> added_tokens(const json& doc, const std::string& path) {
    std::vector<std::string> names;
    if (!doc.contains("added_tokens")) return names;
    require(doc["added_tokens"].is_array(), path + ": \"added_tokens\" is not an array");
    for (const json& t : doc["added_tokens"]) {
        require(t.is_object() && t.contains("content") && t["content"].is_string(),
                path + ": an added token has no \"content\" string");
        names.push_back(t["content"].get<std::string>());
    }
    return names;
}

Tokenizer Tokenizer::load_hf(const std::string& tokenizer_json) {
    const std::string& path = tokenizer_json;
    json doc = read_json_file(path, kMaxTokenizerFileBytes);
    require(doc.is_object() && doc.contains("model") && doc["model"].is_object(),
            path + ": no \"model\" object (not a Hugging Face tokenizer.json)");
    const json& model = doc["model"];
    require(!model.contains("type") || model["type"] == "BPE",
            path + ": model type " + model.value("type", json()).dump() + ", expected \"BPE\"");
    require(model.contains("vocab") && model.contains("merges") && model["merges"].is_array(),
            path + ": the model needs \"vocab\" and a \"merges\" array");
    const json& vocab = model["vocab"];
    const std::vector<std::string> added = added_tokens(doc, path);
    std::vector<std::string> tokens = read_vocab(vocab, added, path);
    const std::string eot_name(kEndOfText);
    require(vocab.contains(eot_name), path + ": no " + eot_name + " token");
    MergeOrder order(tokens, special_ids(vocab, added));
    std::vector<Merge> merges;
    for (const json& m : model["merges"]) {
        size_t i = merges.size();
        ParsedMerge parsed;
        if (m.is_string()) {
            parsed = parse_merge(m.get<std::string>(), vocab, path, merge_of, i);
        } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
            parsed = merge_of_names(m[0].get<std::string>(), m[1].get<std::string>(), vocab, path,
                                    merge_of, i);
        } else {
            throw Error(merge_of(path, i) + " is neither \"left right\" nor [\"left\", \"right\"]");
        }
        order.add(parsed, merge_of(path, i));
        merges.push_back({parsed.left, parsed.right});
    }
    order.require_complete(path);
    int32_t eot = vocab[eot_name].get<int32_t>();
    return from_merges(std::move(tokens), std::move(merges), eot, path);
}

Tokenizer Tokenizer::load(const std::string& path) {
    namespace fs = std::filesystem;
    fs::path p(path);
    auto exists = [](const fs::path& f) { return path_kind(f.string()) != PathKind::kMissing; };
    require(exists(p), path + ": not found (expected a tokenizer directory or file)");
    if (path_kind(path) == PathKind::kDirectory) {
        if (exists(p / "tokenizer.json")) return load_hf((p / "tokenizer.json").string());
        if (exists(p / "encoder.json") && exists(p / "vocab.bpe"))
            return load_gpt2((p / "encoder.json").string(), (p / "vocab.bpe").string());
        throw Error(path + ": directory holds neither tokenizer.json nor encoder.json + vocab.bpe");
    }
    if (p.filename() == "encoder.json")
        return load_gpt2(path, (p.parent_path() / "vocab.bpe").string());
    if (p.filename() == "vocab.bpe")
        return load_gpt2((p.parent_path() / "encoder.json").string(), path);
    if (p.extension() == ".json") return load_hf(path);
    throw Error(path + ": not a tokenizer (expected a directory, tokenizer.json, encoder.json " +
                "or vocab.bpe)");
}

// ---------------------------------------------------------------------------------------------
// Writing: the GPT-2 format, ids in order, so the files diff well and load_gpt2 reads them back;
// Hugging Face's GPT2Tokenizer reads the same two files under its own names.

static void create_dir(const std::string& dir) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    require(!ec, dir + ": cannot create directory (" + ec.message() + ")");
}

// special: the name of the token that is transformers' bos, eos and unk, or null for none.
static void write_hf_files(const std::string& dir, const std::string& vocab,
                           const std::string& merges, const json& special) {
    const json config = {{"tokenizer_class", "GPT2Tokenizer"},
                         {"bos_token", special},
                         {"eos_token", special},
                         {"unk_token", special},
                         {"add_prefix_space", false},
                         {"add_bos_token", false},
                         {"clean_up_tokenization_spaces", false}};
    write_file_atomic(dir + "/vocab.json", vocab);
    write_file_atomic(dir + "/merges.txt", merges);
    write_file_atomic(dir + "/tokenizer_config.json", config.dump(2) + "\n");
}

void Tokenizer::save_gpt2(const std::string& dir) const {
    create_dir(dir);
    std::string encoder = "{";
    for (int32_t id = 0; id < vocab_size(); id++) {
        const std::string& t = token_bytes(id);
        std::string name = id == eot() ? t : to_byte_level(t);
        encoder += (id ? ", " : "") + json(name).dump() + ": " + std::to_string(id);
    }
    encoder += "}";
    std::string bpe = "#version: 0.2\n";
    for (auto [a, b] : merges())
        bpe += to_byte_level(token_bytes(a)) + " " + to_byte_level(token_bytes(b)) + "\n";
    write_file_atomic(dir + "/encoder.json", encoder);
    write_file_atomic(dir + "/vocab.bpe", bpe);
    write_hf_files(dir, encoder, bpe, token_bytes(eot()));
}

void save_byte_vocab_hf(const std::string& dir) {
    create_dir(dir);
    std::string vocab = "{";
    for (int b = 0; b < 256; b++)
        vocab += (b ? ", " : "") + json(to_byte_level(std::string(1, char(b)))).dump() + ": " +
                 std::to_string(b);
    write_hf_files(dir, vocab + "}", "#version: 0.2\n", nullptr);
}

}  // namespace diloco
