// Open-addressing hash maps for the tokenizer's hot paths: byte strings to values (the vocabulary,
// the per-call cache of encoded pre-tokens) and 64-bit keys to values (pairs of token ids).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace diloco {

// Mixes all bits of x into the low bits, which pick the slot.
inline uint64_t mix64(uint64_t x) {
    x ^= x >> 32;
    x *= 0xD6E8FEB86659FD93ull;
    x ^= x >> 32;
    return x;
}

// A hash of a byte string, never 0 (0 marks an empty slot below).
inline uint64_t hash_bytes(std::string_view s) {
    const char* p = s.data();
    size_t n = s.size();
    uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t w;
        std::memcpy(&w, p, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDull;
    }
    if (n > 0) {
        uint64_t w = 0;
        std::memcpy(&w, p, n);
        h = (h ^ w) * 0xFF51AFD7ED558CCDull;
    }
    return mix64(h) | 1;
}

// Equality of short byte strings without a call into libc: most keys are a few bytes long.
inline bool bytes_equal(const char* a, const char* b, size_t n) {
    for (; n >= 8; a += 8, b += 8, n -= 8) {
        uint64_t x, y;
        std::memcpy(&x, a, 8);
        std::memcpy(&y, b, 8);
        if (x != y) return false;
    }
    for (; n > 0; a++, b++, n--)
        if (*a != *b) return false;
    return true;
}

// Byte strings to V, with linear probing in a power-of-two table kept at most half full. The map
// owns copies of its keys in one arena; callers pass the hash so one hash serves several maps.
template <typename V>
class BytesMap {
public:
    BytesMap() { slots_.resize(16); }

    const V* find(std::string_view key, uint64_t hash) const {
        for (size_t i = hash & mask();; i = (i + 1) & mask()) {
            const Slot& s = slots_[i];
            if (s.hash == 0) return nullptr;
            if (s.hash == hash && s.len == key.size() &&
                bytes_equal(arena_.data() + s.offset, key.data(), key.size()))
                return &s.value;
        }
    }

    // Adds key (absent from the map) with its value.
    void insert(std::string_view key, uint64_t hash, V value) {
        if (2 * (size_ + 1) > slots_.size()) grow();
        place(
            {hash, static_cast<uint32_t>(arena_.size()), static_cast<uint32_t>(key.size()), value});
        arena_.append(key);
        size_++;
    }

    size_t size() const { return size_; }
    void clear() {
        slots_.assign(16, Slot{});
        arena_.clear();
        size_ = 0;
    }

private:
    struct Slot {
        uint64_t hash = 0;
        uint32_t offset = 0, len = 0;
        V value{};
    };
    size_t mask() const { return slots_.size() - 1; }
    void place(const Slot& slot) {
        size_t i = slot.hash & mask();
        while (slots_[i].hash != 0) i = (i + 1) & mask();
        slots_[i] = slot;
    }
    void grow() {
        std::vector<Slot> old(2 * slots_.size());
        old.swap(slots_);
        for (const Slot& s : old)
            if (s.hash != 0) place(s);
    }

    std::vector<Slot> slots_;
    std::string arena_;
    size_t size_ = 0;
};

// 64-bit keys (any value but ~0) to V, with the same probing and load as BytesMap.
template <typename V>
class U64Map {
public:
    U64Map() { slots_.assign(16, Slot{}); }

    const V* find(uint64_t key) const {
        for (size_t i = mix64(key) & mask();; i = (i + 1) & mask()) {
            if (slots_[i].key == key) return &slots_[i].value;
            if (slots_[i].key == kEmpty) return nullptr;
        }
    }

    // Adds key unless present; returns whether it was added.
    bool insert(uint64_t key, V value) {
        if (find(key)) return false;
        if (2 * (size_ + 1) > slots_.size()) grow();
        place({key, value});
        size_++;
        return true;
    }

private:
    static constexpr uint64_t kEmpty = ~0ull;
    struct Slot {
        uint64_t key = kEmpty;
        V value{};
    };
    size_t mask() const { return slots_.size() - 1; }
    void place(const Slot& slot) {
        size_t i = mix64(slot.key) & mask();
        while (slots_[i].key != kEmpty) i = (i + 1) & mask();
        slots_[i] = slot;
    }
    void grow() {
        std::vector<Slot> old(2 * slots_.size());
        old.swap(slots_);
        for (const Slot& s : old)
            if (s.key != kEmpty) place(s);
    }

    std::vector<Slot> slots_;
    size_t size_ = 0;
};

}  // namespace diloco
