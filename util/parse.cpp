// Strict parsing of integers in option values.
// std::stoi accepts trailing junk and throws on overflow; this accepts neither silently.
#include "util/parse.h"

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

}  // namespace diloco
