// A cheap fingerprint of a buffer, used to show that ranks hold the same parameters: FNV-1a
// over 64-bit words. Not for integrity on disk (safetensors files carry a CRC-32 for that).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace diloco {

inline uint64_t fnv1a64_words(const unsigned char* p, size_t bytes, uint64_t h) {
    constexpr uint64_t kPrime = 1099511628211ull;
    size_t i = 0;
    for (; i + 8 <= bytes; i += 8) {
        uint64_t word;
        std::memcpy(&word, p + i, 8);
        h = (h ^ word) * kPrime;
    }
    for (; i < bytes; i++) h = (h ^ p[i]) * kPrime;
    return h;
}

// Chunks of 1 MiB are hashed on their own (in parallel: a model's worth of parameters takes
// milliseconds, not the second a byte-serial hash takes), then the chunks' hashes in order,
// so the value depends on the bytes alone, never on the number of threads.
inline uint32_t fingerprint32(const void* data, size_t bytes) {
    constexpr uint64_t kBasis = 14695981039346656037ull;
    constexpr size_t kChunk = size_t(1) << 20;
    const unsigned char* p = static_cast<const unsigned char*>(data);
    const size_t chunks = (bytes + kChunk - 1) / kChunk;
    std::vector<uint64_t> hashes(chunks);
#pragma omp parallel for schedule(static) if (chunks > 4)
    for (size_t c = 0; c < chunks; c++) {
        const size_t begin = c * kChunk, len = bytes - begin < kChunk ? bytes - begin : kChunk;
        hashes[c] = fnv1a64_words(p + begin, len, kBasis);
    }
    const uint64_t h = fnv1a64_words(reinterpret_cast<const unsigned char*>(hashes.data()),
                                     chunks * sizeof(uint64_t), kBasis);
    return static_cast<uint32_t>(h ^ (h >> 32));
}

}  // namespace diloco
