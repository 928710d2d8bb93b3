// Strict parsing of numbers in option values and metadata: the whole text must be a number in range,
// so "3x" or "" is an error rather than a silent 3 or 0.
#pragma once

#include <charconv>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

namespace diloco {

// True and the value when all of text is one integer that fits an int (parse_number's rules).
bool parse_int(const std::string& text, int& value);
// The same for an unsigned 64-bit value (no sign).
bool parse_u64(const std::string& text, uint64_t& value);
// The same for a finite double.
bool parse_double(const std::string& text, double& value);
// The shortest decimal that parse_double reads back as exactly x.
std::string exact_decimal(double x);

// True and the value when all of text is one number of type T: for an integer type digits with
// at most a leading '-' (no '+', space, base prefix or exponent), within T's range; for a
// floating type a finite decimal within T's range. value is left as it was on a refusal.
template <typename T>
bool parse_number(const std::string& text, T& value) {
    if constexpr (std::is_floating_point_v<T>) {
        double wide = 0;
        if (!parse_double(text, wide) || wide < -double(std::numeric_limits<T>::max()) ||
            wide > double(std::numeric_limits<T>::max()))
            return false;
        value = static_cast<T>(wide);
        return true;
    } else {
        const char* end = text.data() + text.size();
        T read{};
        const auto [used, error] = std::from_chars(text.data(), end, read);
        if (error != std::errc() || used != end || text.empty()) return false;
        value = read;
        return true;
    }
}

// The items of a list separated by sep, empty ones included: "1,,2" and "1," hold an empty item
// that the caller refuses, instead of reading them as "1,2" and "1". "" holds none.
std::vector<std::string> split_list(const std::string& text, char sep);

}  // namespace diloco
