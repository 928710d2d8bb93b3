// BPE training with incremental pair counts: each merge rewrites only the words that hold the pair
// and updates the counts of the pairs it touches; a lazy max-heap finds the next pair.
#include "data/bpe_trainer.h"

#include <algorithm>
#include <unordered_map>

#include "util/error.h"

namespace diloco {

namespace {

uint64_t pair_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b);
}

class Trainer {
public:
    explicit Trainer(std::string_view text);
    // Merges the best pair; false when no pair is left.
    bool step();

    std::vector<std::string> tokens;
    std::vector<Tokenizer::Merge> merges;

private:
    struct Word {
        std::vector<int32_t> parts;
        int64_t count;
    };
    struct Entry {
        int64_t count;
        int32_t a, b;
    };

    // The heap's order: more frequent first, then smaller (left bytes, right bytes).
    bool worse(const Entry& x, const Entry& y) const {
        if (x.count != y.count) return x.count < y.count;
        if (tokens[x.a] != tokens[y.a]) return tokens[x.a] > tokens[y.a];
        return tokens[x.b] > tokens[y.b];
    }
    auto order() const {
        return [this](const Entry& x, const Entry& y) { return worse(x, y); };
    }
    void add(int32_t a, int32_t b, int64_t delta, uint32_t word);
    void push_changed();
    int32_t token_for(int32_t a, int32_t b);
    void rewrite(uint32_t word, int32_t a, int32_t b, int32_t merged);

    std::vector<Word> words_;
    std::unordered_map<uint64_t, int64_t> pair_count_;
    // Words that held each pair at some point (a word may be listed twice, or no longer hold it).
    std::unordered_map<uint64_t, std::vector<uint32_t>> where_;
    std::unordered_map<std::string, int32_t> by_bytes_;
    std::vector<Entry> heap_;
    std::vector<uint64_t> changed_;  // pairs whose count changed in this step
    std::vector<uint32_t> visited_;  // per word, the last step that rewrote it
    uint32_t steps_ = 0;
};

Trainer::Trainer(std::string_view text) {
    for (int b = 0; b < 256; b++) {
        tokens.emplace_back(1, static_cast<char>(b));
        by_bytes_[tokens.back()] = b;
    }
    std::unordered_map<std::string_view, int64_t> counts;
    for (std::string_view piece : pretokenize(text)) counts[piece]++;
    for (const auto& [piece, count] : counts) {
        if (piece.size() < 2) continue;  // nothing to merge
        Word w{{}, count};
        for (char c : piece) w.parts.push_back(static_cast<uint8_t>(c));
        words_.push_back(std::move(w));
    }
    visited_.assign(words_.size(), 0);
    for (uint32_t i = 0; i < words_.size(); i++) {
        const std::vector<int32_t>& p = words_[i].parts;
        for (size_t j = 0; j + 1 < p.size(); j++) add(p[j], p[j + 1], words_[i].count, i);
    }
    push_changed();
}

void Trainer::add(int32_t a, int32_t b, int64_t delta, uint32_t word) {
    uint64_t key = pair_key(a, b);
    pair_count_[key] += delta;
    changed_.push_back(key);
    if (delta > 0) where_[key].push_back(word);
}

// The merged token: usually new, but another pair may already have made the same bytes.
int32_t Trainer::token_for(int32_t a, int32_t b) {
    std::string bytes = tokens[a] + tokens[b];
    auto [it, fresh] = by_bytes_.try_emplace(bytes, static_cast<int32_t>(tokens.size()));
    if (fresh) {
        tokens.push_back(std::move(bytes));
        merges.push_back({a, b});
    }
    return it->second;
}

// Replaces each (a, b) in the word, left to right, and moves the counts of the neighbouring pairs
// from the old parts to the merged one.
void Trainer::rewrite(uint32_t word, int32_t a, int32_t b, int32_t merged) {
    Word& w = words_[word];
    std::vector<int32_t> out;
    out.reserve(w.parts.size());
    for (size_t i = 0; i < w.parts.size(); i++) {
        if (i + 1 < w.parts.size() && w.parts[i] == a && w.parts[i + 1] == b) {
            if (!out.empty()) {
                add(out.back(), a, -w.count, word);
                add(out.back(), merged, w.count, word);
            }
            if (i + 2 < w.parts.size()) {
                add(b, w.parts[i + 2], -w.count, word);
                add(merged, w.parts[i + 2], w.count, word);
            }
            add(a, b, -w.count, word);
            out.push_back(merged);
            i++;
        } else {
            out.push_back(w.parts[i]);
        }
    }
    w.parts = std::move(out);
}

// A heap entry per changed pair with its new count; pairs that are gone leave the table. Entries
// with an old count stay in the heap and are skipped when they surface.
void Trainer::push_changed() {
    std::sort(changed_.begin(), changed_.end());
    changed_.erase(std::unique(changed_.begin(), changed_.end()), changed_.end());
    for (uint64_t key : changed_) {
        auto it = pair_count_.find(key);
        if (it->second == 0) {
            pair_count_.erase(it);
            continue;
        }
        heap_.push_back({it->second, static_cast<int32_t>(key >> 32), static_cast<int32_t>(key)});
        std::push_heap(heap_.begin(), heap_.end(), order());
    }
    changed_.clear();
}

bool Trainer::step() {
    while (!heap_.empty()) {
        std::pop_heap(heap_.begin(), heap_.end(), order());
        Entry top = heap_.back();
        heap_.pop_back();
        uint64_t key = pair_key(top.a, top.b);
        auto it = pair_count_.find(key);
        if (it == pair_count_.end() || it->second != top.count) continue;  // stale entry
        int32_t merged = token_for(top.a, top.b);
        std::vector<uint32_t> list = std::move(where_[key]);
        where_.erase(key);
        steps_++;
        for (uint32_t word : list) {
            if (visited_[word] == steps_) continue;
            visited_[word] = steps_;
            rewrite(word, top.a, top.b, merged);
        }
        push_changed();
        return true;
    }
    return false;
}

}  // namespace

Tokenizer train_bpe(std::string_view text, int vocab_size) {
    require(vocab_size >= 257, "BPE vocabulary of " + std::to_string(vocab_size) +
                                   " tokens: need at least 257 (256 bytes and " +
                                   std::string(Tokenizer::kEndOfText) + ")");
    Trainer trainer(text);
    while (static_cast<int>(trainer.tokens.size()) < vocab_size - 1 && trainer.step()) {
    }
    std::vector<std::string> tokens = std::move(trainer.tokens);
    tokens.emplace_back(Tokenizer::kEndOfText);
    int32_t eot = static_cast<int32_t>(tokens.size()) - 1;
    return Tokenizer::from_merges(std::move(tokens), std::move(trainer.merges), eot,
                                  "BPE trained on " + std::to_string(text.size()) + " bytes");
}

}  // namespace diloco
