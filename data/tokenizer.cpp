// The GPT-2 pre-tokeniser as a hand-written scanner, the rank-based BPE merge with tiktoken's
// rules, the per-call cache of encoded pre-tokens, and encoding on several threads.
#include "data/tokenizer.h"

#include <algorithm>
#include <array>
#include <thread>

#include "data/tokenizer_hash.h"
#include "data/unicode.h"
#include "util/error.h"

namespace diloco {

// ---------------------------------------------------------------------------------------------
// Pre-tokenisation. The regex tries its alternatives in order at each position and the first that
// matches wins; each function below is one alternative, written for the units of data/unicode.h.

static Unit unit_at(std::string_view text, size_t pos) {
    return next_unit(reinterpret_cast<const uint8_t*>(text.data()) + pos, text.size() - pos);
}

// End of the run of units of class cls that starts at pos.
static size_t run_end(std::string_view text, size_t pos, CharClass cls) {
    while (pos < text.size()) {
        Unit u = unit_at(text, pos);
        if (u.cls != cls) break;
        pos += u.len;
    }
    return pos;
}

// 's|'t|'re|'ve|'m|'ll|'d (case-sensitive, like GPT-2): the end of the match at pos, or 0.
static size_t contraction_end(std::string_view text, size_t pos) {
    std::string_view rest = text.substr(pos + 1, 2);
    if (rest.empty()) return 0;
    if (rest[0] == 's' || rest[0] == 't' || rest[0] == 'm' || rest[0] == 'd') return pos + 2;
    if (rest == "re" || rest == "ve" || rest == "ll") return pos + 3;
    return 0;
}

// \s+(?!\S)|\s+ : a run of white space that ends the text is one pre-token; otherwise the run
// gives back its last unit (when it has two or more), so that a space can join the word after it.
static size_t space_end(std::string_view text, size_t pos) {
    size_t last = pos, end = pos;
    while (end < text.size()) {
        Unit u = unit_at(text, end);
        if (u.cls != CharClass::kSpace) break;
        last = end;
        end += u.len;
    }
    return (end == text.size() || last == pos) ? end : last;
}

size_t pretoken_end(std::string_view text, size_t pos) {
    if (text[pos] == '\'') {
        if (size_t end = contraction_end(text, pos)) return end;
    }
    // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: a space followed by one of the three classes
    // starts a run of that class.
    if (text[pos] == ' ' && pos + 1 < text.size()) {
        Unit next = unit_at(text, pos + 1);
        if (next.cls != CharClass::kSpace) return run_end(text, pos + 1 + next.len, next.cls);
    }
    Unit u = unit_at(text, pos);
    if (u.cls != CharClass::kSpace) return run_end(text, pos + u.len, u.cls);
    return space_end(text, pos);
}

std::vector<std::string_view> pretokenize(std::string_view text) {
    std::vector<std::string_view> pieces;
    for (size_t pos = 0, end; pos < text.size(); pos = end) {
        end = pretoken_end(text, pos);
        pieces.push_back(text.substr(pos, end - pos));
    }
    return pieces;
}

// ---------------------------------------------------------------------------------------------
// The model. tiktoken merges two adjacent parts whenever their concatenation is a mergeable token
// (a byte, or the result of a merge), lowest rank first, leftmost on ties; it does not ask whether
// that exact pair is a listed merge. So the rules table holds every split of every merge result
// into two mergeable tokens, with the rank of the result (its first merge).

namespace {

struct Rule {
    int32_t rank = 0, id = 0;
};

uint64_t pair_key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
           static_cast<uint32_t>(right);
}

}  // namespace

struct Tokenizer::Model {
    std::string source;
    std::vector<std::string> tokens;
    std::vector<Merge> merges;
    int32_t eot = 0;
    std::array<int32_t, 256> byte_token{};
    BytesMap<int32_t> mergeable;  // bytes -> id, for the byte tokens and the merge results
    U64Map<Rule> rules;           // (left id, right id) -> their merge
};

// Every token but eot by its bytes; two tokens with the same bytes are an error.
static BytesMap<int32_t> index_tokens(const std::vector<std::string>& tokens, int32_t eot,
                                      const std::string& source) {
    BytesMap<int32_t> index;
    for (int32_t id = 0; id < static_cast<int32_t>(tokens.size()); id++) {
        if (id == eot) continue;
        uint64_t h = hash_bytes(tokens[id]);
        if (const int32_t* twin = index.find(tokens[id], h))
            throw Error(source + ": tokens " + std::to_string(*twin) + " and " +
                        std::to_string(id) + " have the same bytes");
        index.insert(tokens[id], h, id);
    }
    return index;
}

// Rank of each token's first merge, -1 for tokens no merge makes.
static std::vector<int32_t> merge_ranks(const std::vector<Tokenizer::Merge>& merges,
                                        const std::vector<std::string>& tokens, int32_t eot,
                                        const BytesMap<int32_t>& index, const std::string& source) {
    std::vector<int32_t> rank(tokens.size(), -1);
    int32_t n = static_cast<int32_t>(tokens.size());
    for (size_t i = 0; i < merges.size(); i++) {
        const int32_t a = merges[i].first, b = merges[i].second;  // clang 14 cannot capture bindings
        auto fail = [&](const std::string& problem) {
            throw Error(source + ": merge " + std::to_string(i) + " (" + std::to_string(a) + ", " +
                        std::to_string(b) + ") " + problem);
        };
        if (a < 0 || a >= n || b < 0 || b >= n || a == eot || b == eot)
            fail("names a token outside the mergeable vocabulary");
        std::string joined = tokens[a] + tokens[b];
        const int32_t* id = index.find(joined, hash_bytes(joined));
        if (!id) fail("makes a token that is not in the vocabulary");
        if (rank[*id] < 0) rank[*id] = static_cast<int32_t>(i);
    }
    return rank;
}

// The byte tokens, then the merge results, by their bytes.
static void index_mergeable(Tokenizer::Model& m, const std::vector<std::string>& tokens,
                            const std::vector<int32_t>& rank, const BytesMap<int32_t>& index,
                            const std::string& source) {
    for (int b = 0; b < 256; b++) {
        std::string byte(1, static_cast<char>(b));
        const int32_t* id = index.find(byte, hash_bytes(byte));
        require(id != nullptr, source + ": no token for byte " + std::to_string(b));
        m.byte_token[b] = *id;
        m.mergeable.insert(byte, hash_bytes(byte), *id);
    }
    for (size_t id = 0; id < tokens.size(); id++)
        if (rank[id] >= 0)
            m.mergeable.insert(tokens[id], hash_bytes(tokens[id]), static_cast<int32_t>(id));
}

// Every split of every merge result into two mergeable tokens.
static void add_rules(Tokenizer::Model& m, const std::vector<std::string>& tokens,
                      const std::vector<int32_t>& rank) {
    for (size_t id = 0; id < tokens.size(); id++) {
        if (rank[id] < 0) continue;
        std::string_view t = tokens[id];
        for (size_t k = 1; k < t.size(); k++) {
            std::string_view left = t.substr(0, k), right = t.substr(k);
            const int32_t* l = m.mergeable.find(left, hash_bytes(left));
            const int32_t* r = m.mergeable.find(right, hash_bytes(right));
            if (l && r) m.rules.insert(pair_key(*l, *r), {rank[id], static_cast<int32_t>(id)});
        }
    }
}

Tokenizer Tokenizer::from_merges(std::vector<std::string> tokens, std::vector<Merge> merges,
                                 int32_t eot, const std::string& source) {
    require(eot >= 0 && eot < static_cast<int32_t>(tokens.size()),
            source + ": no " + std::string(kEndOfText) + " token");
    BytesMap<int32_t> index = index_tokens(tokens, eot, source);
    std::vector<int32_t> rank = merge_ranks(merges, tokens, eot, index, source);
    auto m = std::make_shared<Model>();
    index_mergeable(*m, tokens, rank, index, source);
    add_rules(*m, tokens, rank);
    m->source = source;
    m->tokens = std::move(tokens);
    m->merges = std::move(merges);
    m->eot = eot;
    return Tokenizer(std::move(m));
}

// ---------------------------------------------------------------------------------------------
// Encoding. One Encoder per call (or per thread) owns a cache of the pre-tokens it has merged:
// words repeat, and a cache hit costs one hash probe instead of a merge.

namespace {

class Encoder {
public:
    explicit Encoder(const Tokenizer::Model& m) : m_(m) {}

    void encode(std::string_view text, std::vector<int32_t>& out) {
        for (size_t pos = 0, end; pos < text.size(); pos = end) {
            end = pretoken_end(text, pos);
            encode_piece(text.substr(pos, end - pos), out);
        }
    }

private:
    // Long pre-tokens (runs of symbols, base64, ...) rarely repeat; a bound keeps the cache small.
    static constexpr size_t kMaxCachedPiece = 64, kMaxCacheEntries = 1 << 18;
    struct Span {
        uint32_t offset = 0, count = 0;
    };
    // A part of the pre-token during the merge: its token and its neighbours (-1: none).
    struct Part {
        int32_t id, prev, next;
    };
    // Two adjacent parts that could merge, with what they were when this was pushed: a later
    // merge of either makes it stale.
    struct Candidate {
        int32_t rank, left, right, left_id, right_id, merged;
        bool operator>(const Candidate& o) const {
            return rank != o.rank ? rank > o.rank : left > o.left;
        }
    };

    void encode_piece(std::string_view piece, std::vector<int32_t>& out) {
        uint64_t h = hash_bytes(piece);
        if (const int32_t* id = m_.mergeable.find(piece, h)) {
            out.push_back(*id);  // most pre-tokens are one token; tiktoken takes the same path
            return;
        }
        if (const Span* s = cache_.find(piece, h)) {
            out.insert(out.end(), cached_.begin() + s->offset,
                       cached_.begin() + s->offset + s->count);
            return;
        }
        size_t first = out.size();
        merge(piece, out);
        if (piece.size() > kMaxCachedPiece) return;
        if (cache_.size() >= kMaxCacheEntries) cache_.clear(), cached_.clear();
        cache_.insert(
            piece, h,
            {static_cast<uint32_t>(cached_.size()), static_cast<uint32_t>(out.size() - first)});
        cached_.insert(cached_.end(), out.begin() + first, out.end());
    }

    void push_candidate(int32_t left, int32_t right) {
        const Rule* rule = m_.rules.find(pair_key(parts_[left].id, parts_[right].id));
        if (!rule) return;
        heap_.push_back({rule->rank, left, right, parts_[left].id, parts_[right].id, rule->id});
        std::push_heap(heap_.begin(), heap_.end(), std::greater<>());
    }

    // Lowest rank first, leftmost on ties, until no adjacent pair merges: O(n log n) with a heap
    // of candidates, so a megabyte-long pre-token is no trap.
    void merge(std::string_view piece, std::vector<int32_t>& out) {
        int32_t n = static_cast<int32_t>(piece.size());
        parts_.resize(n);
        for (int32_t i = 0; i < n; i++)
            parts_[i] = {m_.byte_token[static_cast<uint8_t>(piece[i])], i - 1,
                         i + 1 < n ? i + 1 : -1};
        heap_.clear();
        for (int32_t i = 0; i + 1 < n; i++) push_candidate(i, i + 1);
        while (!heap_.empty()) {
            std::pop_heap(heap_.begin(), heap_.end(), std::greater<>());
            Candidate c = heap_.back();
            heap_.pop_back();
            Part& left = parts_[c.left];
            if (left.id != c.left_id || left.next != c.right || parts_[c.right].id != c.right_id)
                continue;
            left.id = c.merged;
            left.next = parts_[c.right].next;
            parts_[c.right].id = -1;
            if (left.next >= 0) parts_[left.next].prev = c.left;
            if (left.prev >= 0) push_candidate(left.prev, c.left);
            if (left.next >= 0) push_candidate(c.left, left.next);
        }
        for (int32_t i = 0; i >= 0; i = parts_[i].next) out.push_back(parts_[i].id);
    }

    const Tokenizer::Model& m_;
    BytesMap<Span> cache_;
    std::vector<int32_t> cached_;
    std::vector<Part> parts_;
    std::vector<Candidate> heap_;
};

}  // namespace

struct BatchEncoder::Impl {
    explicit Impl(std::shared_ptr<const Tokenizer::Model> m)
        : model(std::move(m)), encoder(*model) {}
    std::shared_ptr<const Tokenizer::Model> model;  // kept alive for the encoder
    Encoder encoder;
};

BatchEncoder::BatchEncoder(const Tokenizer& tok) : impl_(std::make_unique<Impl>(tok.model_)) {}
BatchEncoder::~BatchEncoder() = default;

void BatchEncoder::encode(std::string_view text, std::vector<int32_t>& out) {
    impl_->encoder.encode(text, out);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
    std::vector<int32_t> out;
    out.reserve(text.size() / 4);
    Encoder(*model_).encode(text, out);
    return out;
}

std::vector<int32_t> Tokenizer::encode_with_special(std::string_view text) const {
    std::vector<int32_t> out;
    Encoder encoder(*model_);
    for (size_t pos = 0;;) {
        size_t hit = text.find(kEndOfText, pos);
        encoder.encode(text.substr(pos, hit - pos), out);
        if (hit == std::string_view::npos) return out;
        out.push_back(model_->eot);
        pos = hit + kEndOfText.size();
    }
}

// A cut at pos is safe when an ASCII non-space comes before it and an ASCII space after it: no
// pre-token holds a non-space followed by a space, so a pre-token ends at pos, and the one that
// ends there does so whether or not the encoder sees past pos. A cut after white space would not
// be safe: "a\n\nb" gives "a", "\n", "\n", "b", but "a\n\n" alone gives "a", "\n\n".
static bool safe_cut(std::string_view text, size_t pos) {
    uint8_t before = static_cast<uint8_t>(text[pos - 1]), after = static_cast<uint8_t>(text[pos]);
    return before < 0x80 && after < 0x80 && kAsciiClasses[before] != CharClass::kSpace &&
           kAsciiClasses[after] == CharClass::kSpace;
}

// Cut points near k equal shares; a share with no safe cut joins the next one.
static std::vector<size_t> parallel_cuts(std::string_view text, int shares) {
    std::vector<size_t> cuts{0};
    for (int i = 1; i < shares; i++) {
        size_t pos = std::max(text.size() * i / shares, cuts.back() + 1);
        size_t limit = text.size() * (i + 1) / shares;
        while (pos < limit && !safe_cut(text, pos)) pos++;
        if (pos < limit) cuts.push_back(pos);
    }
    cuts.push_back(text.size());
    return cuts;
}

std::vector<int32_t> Tokenizer::encode_parallel(std::string_view text, int threads) const {
    // Below this many bytes per thread, starting threads costs more than it saves.
    constexpr size_t kMinShare = 1 << 16;
    int shares =
        static_cast<int>(std::min<size_t>(std::max(threads, 1), text.size() / kMinShare + 1));
    std::vector<size_t> cuts = parallel_cuts(text, shares);
    std::vector<std::vector<int32_t>> parts(cuts.size() - 1);
    auto work = [&](size_t i) { parts[i] = encode(text.substr(cuts[i], cuts[i + 1] - cuts[i])); };
    std::vector<std::thread> pool;
    for (size_t i = 1; i < parts.size(); i++) pool.emplace_back(work, i);
    work(0);
    for (std::thread& t : pool) t.join();
    std::vector<int32_t> out;
    for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
    std::string text;
    for (int32_t id : ids) text += token_bytes(id);
    return text;
}

int Tokenizer::vocab_size() const { return static_cast<int>(model_->tokens.size()); }
int Tokenizer::eot() const { return model_->eot; }
const std::vector<Tokenizer::Merge>& Tokenizer::merges() const { return model_->merges; }
const std::string& Tokenizer::source() const { return model_->source; }

const std::string& Tokenizer::token_bytes(int32_t id) const {
    if (id < 0 || id >= vocab_size())
        throw Error(model_->source + ": token id " + std::to_string(id) +
                    " is outside the vocabulary of " + std::to_string(vocab_size()));
    return model_->tokens[id];
}

}  // namespace diloco
