// Strict parsing of numbers in option values and metadata.
// std::stoi accepts spaces, '+' and trailing junk and throws on overflow; this accepts none of it.
#include "util/parse.h"

#include <charconv>
#include <cmath>

namespace diloco {

bool parse_int(const std::string& text, int& value) { return parse_number(text, value); }

bool parse_u64(const std::string& text, uint64_t& value) { return parse_number(text, value); }

bool parse_double(const std::string& text, double& value) {
    const char* end = text.data() + text.size();
    double read = 0;
    const auto [used, error] = std::from_chars(text.data(), end, read);
    if (error != std::errc() || used != end || text.empty() || !std::isfinite(read)) return false;
    value = read;
    return true;
}

std::vector<std::string> split_list(const std::string& text, char sep) {
    std::vector<std::string> items;
    if (text.empty()) return items;
    size_t start = 0;
    for (size_t at; (at = text.find(sep, start)) != std::string::npos; start = at + 1)
        items.push_back(text.substr(start, at - start));
    items.push_back(text.substr(start));
    return items;
}

std::string exact_decimal(double x) {
    char text[32];
    const auto [end, error] = std::to_chars(text, text + sizeof text, x);
    return error == std::errc() ? std::string(text, end) : std::string();
}

}  // namespace diloco
