// Strict parsing of numbers in option values and metadata: the whole text must be a number in range,
// so "3x" or "" is an error rather than a silent 3 or 0.
#pragma once

#include <cstdint>
#include <string>

namespace diloco {

// True and the value when all of text is one integer that fits an int.
bool parse_int(const std::string& text, int& value);
// The same for an unsigned 64-bit value (no sign, no junk).
bool parse_u64(const std::string& text, uint64_t& value);
// The same for a finite double.
bool parse_double(const std::string& text, double& value);
// The shortest decimal that parse_double reads back as exactly x.
std::string exact_decimal(double x);

}  // namespace diloco
