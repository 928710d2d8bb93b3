// Numbers for people: counts with thousands separators, for summaries and messages.
// Header-only; no locale is involved, so the output is the same everywhere.
#pragma once

#include <cstdint>
#include <string>

namespace diloco {

// 1234567 -> "1,234,567".
inline std::string thousands(uint64_t n) {
    std::string digits = std::to_string(n), out;
    for (size_t i = 0; i < digits.size(); i++) {
        if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return out;
}

}  // namespace diloco
