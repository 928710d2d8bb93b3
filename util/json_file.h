// JSON files read with messages in our words: "FILE: malformed JSON at byte N (line L, col C)"
// and "FILE: field "x" must be ...", never the library's own text.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace diloco {

// path read with a size limit (util/files.h) and parsed; an Error naming it on a syntax error,
// with the byte, line and column, or on a number out of range.
nlohmann::json read_json_file(const std::string& path, uint64_t max_bytes);
// text parsed; errors name `where` (a file, or a part of one such as a safetensors header).
nlohmann::json parse_json(const std::string& text, const std::string& where);

// Typed fields of object j, where naming it in messages ("FILE" or "FILE: train[1]"). Each is
// an Error when the field is missing, has another type or is out of range.
const nlohmann::json& json_field(const nlohmann::json& j, const std::string& key,
                                 const std::string& where);
const nlohmann::json& json_object(const nlohmann::json& j, const std::string& key,
                                  const std::string& where);
std::string json_string(const nlohmann::json& j, const std::string& key, const std::string& where);
// A whole number in min..max (300.7, -1 or 1e400 are refused, never truncated or wrapped).
int64_t json_int(const nlohmann::json& j, const std::string& key, const std::string& where,
                 int64_t min, int64_t max);
uint64_t json_count(const nlohmann::json& j, const std::string& key, const std::string& where,
                    uint64_t max = UINT64_MAX);
// A finite number in min..max.
double json_number(const nlohmann::json& j, const std::string& key, const std::string& where,
                   double min, double max);
bool json_bool(const nlohmann::json& j, const std::string& key, const std::string& where);
std::vector<std::string> json_strings(const nlohmann::json& j, const std::string& key,
                                      const std::string& where);

}  // namespace diloco
