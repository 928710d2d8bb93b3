// Strict parsing of numbers in option values and metadata.
// std::stoi accepts trailing junk and throws on overflow; this accepts neither silently.
#include "util/parse.h"

#include <charconv>
#include <cmath>
#include <stdexcept>

namespace diloco {

bool parse_int(const std::string& text, int& value) {
    size_t used = 0;
    try {
        value = std::stoi(text, &used);
    } catch (const std::exception&) {
        return false;
    }
    return used == text.size() && used > 0;
}

bool parse_u64(const std::string& text, uint64_t& value) {
    if (text.empty() || text[0] < '0' || text[0] > '9') return false;
    size_t used = 0;
    try {
        value = std::stoull(text, &used);
    } catch (const std::exception&) {
        return false;
    }
    return used == text.size();
}

bool parse_double(const std::string& text, double& value) {
    const char* end = text.data() + text.size();
    const auto [used, error] = std::from_chars(text.data(), end, value);
    return error == std::errc() && used == end && !text.empty() && std::isfinite(value);
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
