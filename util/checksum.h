// FNV-1a, 32 bits: a cheap fingerprint of a buffer, used to show that ranks hold the same
// parameters. Not for integrity on disk (safetensors files carry a CRC-32 for that).
#pragma once

#include <cstddef>
#include <cstdint>

namespace diloco {

inline uint32_t fnv1a32(const void* data, size_t bytes) {
    const unsigned char* p = static_cast<const unsigned char*>(data);
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < bytes; i++) h = (h ^ p[i]) * 16777619u;
    return h;
}

}  // namespace diloco
