// UTF-8 for the GPT-2 pre-tokeniser: text is cut into units (a well-formed code point, or one
// byte that does not start one) and each unit has a class: letter, number, white space or other.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace diloco {

// \p{L}, \p{N}, Unicode White_Space (what tiktoken's \s matches), and everything else.
enum class CharClass : uint8_t { kOther, kLetter, kNumber, kSpace };

struct UnicodeRange {
    uint32_t first, last;
    CharClass cls;
};
// The generated tables (data/unicode_tables.cpp): sorted, disjoint ranges of the classes other
// than kOther, and the Unicode version they come from.
extern const char kUnicodeVersion[];
extern const size_t kUnicodeRangeCount;
extern const UnicodeRange kUnicodeRanges[];

// The class of any code point (kOther beyond U+10FFFF).
CharClass char_class(uint32_t cp);

// A unit of text. An invalid byte (a stray continuation byte, an overlong or surrogate form, a
// truncated sequence, ...) is a unit of one byte of class kOther, exactly where U+FFFD would be,
// so any byte string splits into units and no byte is lost.
struct Unit {
    uint32_t cp;   // the code point; for an invalid byte, the byte itself
    uint32_t len;  // bytes: 1 to 4
    CharClass cls;
};

constexpr std::array<CharClass, 128> ascii_classes() {
    std::array<CharClass, 128> t{};
    for (int c = 0; c < 128; c++) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
            t[c] = CharClass::kLetter;
        else if (c >= '0' && c <= '9')
            t[c] = CharClass::kNumber;
        else if (c == ' ' || (c >= '\t' && c <= '\r'))
            t[c] = CharClass::kSpace;
    }
    return t;
}
inline constexpr std::array<CharClass, 128> kAsciiClasses = ascii_classes();

Unit next_unit_multibyte(const uint8_t* s, size_t n);

// The unit at the start of s[0..n), n >= 1. ASCII, most of most text, stays inline.
inline Unit next_unit(const uint8_t* s, size_t n) {
    if (s[0] < 0x80) return {s[0], 1, kAsciiClasses[s[0]]};
    return next_unit_multibyte(s, n);
}

}  // namespace diloco
