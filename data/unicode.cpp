// UTF-8 decoding into units and the class lookup: a flat table for the Basic Multilingual Plane,
// built once from the generated ranges, and a binary search over the ranges above it.
#include "data/unicode.h"

#include <algorithm>
#include <vector>

namespace diloco {

static std::vector<CharClass> bmp_classes() {
    std::vector<CharClass> table(0x10000, CharClass::kOther);
    for (size_t i = 0; i < kUnicodeRangeCount && kUnicodeRanges[i].first < 0x10000; i++) {
        const UnicodeRange& r = kUnicodeRanges[i];
        std::fill(table.begin() + r.first, table.begin() + std::min<uint32_t>(r.last, 0xFFFF) + 1,
                  r.cls);
    }
    return table;
}

CharClass char_class(uint32_t cp) {
    static const std::vector<CharClass> bmp = bmp_classes();
    if (cp < 0x10000) return bmp[cp];
    const UnicodeRange* end = kUnicodeRanges + kUnicodeRangeCount;
    // The first range that ends at or after cp holds cp if any range does.
    const UnicodeRange* r = std::lower_bound(
        kUnicodeRanges, end, cp, [](const UnicodeRange& x, uint32_t c) { return x.last < c; });
    return (r != end && r->first <= cp) ? r->cls : CharClass::kOther;
}

// Well-formed sequences follow Table 3-7 of the Unicode Standard: the lead byte fixes the length
// and the range of the second byte, which is what excludes overlong forms, surrogates and code
// points above U+10FFFF; later bytes are any continuation byte.
Unit next_unit_multibyte(const uint8_t* s, size_t n) {
    const Unit invalid{s[0], 1, CharClass::kOther};
    uint8_t b = s[0];
    uint32_t len = 0, lo = 0x80, hi = 0xBF, cp = 0;
    if (b >= 0xC2 && b <= 0xDF)
        len = 2, cp = b & 0x1F;
    else if (b >= 0xE0 && b <= 0xEF)
        len = 3, cp = b & 0x0F;
    else if (b >= 0xF0 && b <= 0xF4)
        len = 4, cp = b & 0x07;
    else
        return invalid;
    if (b == 0xE0) lo = 0xA0;
    if (b == 0xED) hi = 0x9F;
    if (b == 0xF0) lo = 0x90;
    if (b == 0xF4) hi = 0x8F;
    if (n < len || s[1] < lo || s[1] > hi) return invalid;
    for (uint32_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return invalid;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    return {cp, len, char_class(cp)};
}

}  // namespace diloco
