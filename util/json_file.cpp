// JSON files parsed and their fields read with our own messages: the byte, line and column of
// a syntax error, the field and the expected type or range of a wrong value.
#include "util/json_file.h"

#include <algorithm>
#include <cmath>

#include "util/error.h"
#include "util/files.h"

namespace diloco {

using json = nlohmann::json;

namespace {

// "line L, column C" of byte offset at (0-based) in text.
std::string line_and_column(const std::string& text, size_t at) {
    at = std::min(at, text.size());
    size_t line = 1, line_start = 0;
    for (size_t i = 0; i < at; i++)
        if (text[i] == '\n') line++, line_start = i + 1;
    return "line " + std::to_string(line) + ", column " + std::to_string(at - line_start + 1);
}

// The reason in a parse error's message, after its position ("... - unexpected end of input;
// expected string literal" gives "unexpected end of input; expected string literal").
std::string reason_of(const std::string& message) {
    const size_t dash = message.find(" - ");
    return dash == std::string::npos ? "" : ": " + message.substr(dash + 3);
}

// A value as it reads in a message: short, and safe for bytes that are not UTF-8.
std::string shown(const json& v) {
    std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
    return s.size() > 40 ? s.substr(0, 37) + "..." : s;
}

std::string field_name(const std::string& where, const std::string& key) {
    return where + ": field \"" + key + "\"";
}

[[noreturn]] void wrong(const std::string& where, const std::string& key, const std::string& must,
                        const json& v) {
    throw Error(field_name(where, key) + " must be " + must + ", found " + shown(v));
}

}  // namespace

json parse_json(const std::string& text, const std::string& where) {
    if (text.find_first_not_of(" \t\r\n") == std::string::npos)
        throw Error(where + ": empty, expected JSON");
    try {
        return json::parse(text);
    } catch (const json::parse_error& e) {
        const size_t at = e.byte > 0 ? e.byte - 1 : 0;  // nlohmann counts from 1
        throw Error(where + ": malformed JSON at byte " + std::to_string(at) + " (" +
                    line_and_column(text, at) + ")" + reason_of(e.what()));
    } catch (const json::out_of_range& e) {  // a number past a double (1e400)
        const std::string m = e.what();
        const size_t open = m.find('\''), close = m.rfind('\'');
        const std::string number =
            open < close ? " " + m.substr(open + 1, close - open - 1) : std::string();
        throw Error(where + ": malformed JSON: the number" + number + " is out of range");
    } catch (const json::exception&) {
        throw Error(where + ": malformed JSON");
    }
}

json read_json_file(const std::string& path, uint64_t max_bytes) {
    return parse_json(read_file(path, max_bytes), path);
}

const json& json_field(const json& j, const std::string& key, const std::string& where) {
    require(j.is_object(), where + ": expected a JSON object, found " + shown(j));
    auto it = j.find(key);
    require(it != j.end(), field_name(where, key) + " is missing");
    return *it;
}

const json& json_object(const json& j, const std::string& key, const std::string& where) {
    const json& v = json_field(j, key, where);
    if (!v.is_object()) wrong(where, key, "an object", v);
    return v;
}

std::string json_string(const json& j, const std::string& key, const std::string& where) {
    const json& v = json_field(j, key, where);
    if (!v.is_string()) wrong(where, key, "a string", v);
    return v.get<std::string>();
}

int64_t json_int(const json& j, const std::string& key, const std::string& where, int64_t min,
                 int64_t max) {
    const json& v = json_field(j, key, where);
    const std::string range = std::to_string(min) + ".." + std::to_string(max);
    const bool in_range =
        v.is_number_unsigned() ? v.get<uint64_t>() <= uint64_t(std::max<int64_t>(max, 0)) &&
                                     int64_t(v.get<uint64_t>()) >= min
        : v.is_number_integer() ? v.get<int64_t>() >= min && v.get<int64_t>() <= max
                                : false;
    if (!in_range) wrong(where, key, "a whole number in " + range, v);
    return v.get<int64_t>();
}

uint64_t json_count(const json& j, const std::string& key, const std::string& where, uint64_t max) {
    const json& v = json_field(j, key, where);
    const bool whole = v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0);
    if (!whole || v.get<uint64_t>() > max)
        wrong(where, key, "a whole number in 0.." + std::to_string(max), v);
    return v.get<uint64_t>();
}

double json_number(const json& j, const std::string& key, const std::string& where, double min,
                   double max) {
    const json& v = json_field(j, key, where);
    const double x = v.is_number() ? v.get<double>() : NAN;
    if (!(std::isfinite(x) && x >= min && x <= max))
        wrong(where, key, "a number in " + json(min).dump() + ".." + json(max).dump(), v);
    return x;
}

bool json_bool(const json& j, const std::string& key, const std::string& where) {
    const json& v = json_field(j, key, where);
    if (!v.is_boolean()) wrong(where, key, "true or false", v);
    return v.get<bool>();
}

std::vector<std::string> json_strings(const json& j, const std::string& key,
                                      const std::string& where) {
    const json& v = json_field(j, key, where);
    if (!v.is_array()) wrong(where, key, "an array of strings", v);
    std::vector<std::string> out;
    for (const json& item : v) {
        if (!item.is_string()) wrong(where, key, "an array of strings", v);
        out.push_back(item.get<std::string>());
    }
    return out;
}

}  // namespace diloco
