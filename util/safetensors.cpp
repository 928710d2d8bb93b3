// Reading and writing safetensors files (the Hugging Face format), checked field by field.
// Each failure names the file and what was wrong, so a truncated checkpoint is a one-line error.
#include "util/safetensors.h"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "util/error.h"
#include "util/files.h"
#include "util/json_file.h"

namespace diloco {

static const char* kCrcKey = "diloco_crc32";
// Hugging Face's reader refuses a longer header; so do we, before reading it.
static constexpr uint64_t kMaxHeaderBytes = 100'000'000;

// The CRC-32 of bytes, continued from the crc of what came before them (0 for nothing).
static uint32_t crc32_of(std::string_view bytes, uint32_t crc = 0) {
    size_t done = 0;
    while (done < bytes.size()) {  // zlib takes 32-bit lengths
        uInt chunk = static_cast<uInt>(std::min<size_t>(bytes.size() - done, 1u << 30));
        crc = static_cast<uint32_t>(
            crc32(crc, reinterpret_cast<const Bytef*>(bytes.data() + done), chunk));
        done += chunk;
    }
    return crc;
}

// The index of the first NaN or Inf, n if there is none. The checks of whole tensors build
// their message once, after the scan: one per element cost seconds per save of a big model.
static size_t first_non_finite(const float* values, size_t n) {
    return std::find_if_not(values, values + n, [](float v) { return std::isfinite(v); }) - values;
}

static size_t element_count(const std::vector<int64_t>& shape) {
    size_t n = 1;
    for (int64_t d : shape) n *= static_cast<size_t>(d);
    return n;
}

static std::string shape_string(const std::vector<int64_t>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); i++) s += (i ? "," : "") + std::to_string(shape[i]);
    return s + "]";
}

static size_t dtype_size(const std::string& dtype) {
    if (dtype == "F64" || dtype == "I64" || dtype == "U64") return 8;
    if (dtype == "F32" || dtype == "I32" || dtype == "U32") return 4;
    if (dtype == "F16" || dtype == "BF16" || dtype == "I16" || dtype == "U16") return 2;
    if (dtype == "I8" || dtype == "U8" || dtype == "BOOL" || dtype == "F8_E4M3" ||
        dtype == "F8_E5M2")
        return 1;
    return 0;
}

// The tensors go to the file from where they are: no copy of the data section is made.
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
    nlohmann::ordered_json header;
    std::vector<std::string_view> parts(1);  // parts[0]: the length and the header, made last
    size_t offset = 0;
    uint32_t crc = 0;
    for (const TensorToWrite& t : tensors) {
        require(t.dtype == "F32" || t.dtype == "F16" || t.dtype == "BF16" || t.dtype == "I32",
                path + ": cannot write tensor '" + t.name + "' as " + t.dtype);
        const size_t n = element_count(t.shape), bytes = n * dtype_size(t.dtype);
        const float* values = t.dtype == "F32" ? static_cast<const float*>(t.data) : nullptr;
        const size_t bad = values ? first_non_finite(values, n) : n;  // a diverged run saves no NaN
        if (bad < n)
            throw Error(path + ": refusing to save tensor '" + t.name + "': it holds " +
                        std::to_string(values[bad]) + " at index " + std::to_string(bad));
        header[t.name] = {{"dtype", t.dtype},
                          {"shape", t.shape},
                          {"data_offsets", {offset, offset + bytes}}};
        parts.emplace_back(static_cast<const char*>(t.data), bytes);
        crc = crc32_of(parts.back(), crc);
        offset += bytes;
    }
    nlohmann::ordered_json meta(metadata);
    meta[kCrcKey] = std::to_string(crc);
    header["__metadata__"] = meta;
    std::string json = header.dump();
    json.append((8 - json.size() % 8) % 8, ' ');  // keeps the data section 8-byte aligned
    uint64_t length = json.size();
    std::string head(reinterpret_cast<const char*>(&length), 8);
    head += json;
    parts[0] = head;
    write_file_atomic(path, parts);
}

static SafetensorsFile::Entry parse_entry(const std::string& path, const std::string& name,
                                          const nlohmann::json& j) {
    const std::string where = path + ": tensor '" + name + "': ";
    require(j.is_object() && j.contains("dtype") && j.contains("shape") &&
                j.contains("data_offsets"),
            where + "needs dtype, shape and data_offsets");
    SafetensorsFile::Entry e;
    require(j["dtype"].is_string(), where + "dtype is not a string");
    e.dtype = j["dtype"].get<std::string>();
    require(dtype_size(e.dtype) > 0, where + "unknown dtype " + e.dtype);
    require(j["shape"].is_array(), where + "shape is not an array");
    size_t bytes = dtype_size(e.dtype);
    for (const auto& d : j["shape"]) {
        require(d.is_number_unsigned(), where + "shape has a non-integer or negative entry");
        // Data must fit the file, so a size that overflows 64 bits is corrupt, not big.
        require(d.get<uint64_t>() <= uint64_t(INT64_MAX) &&
                    !__builtin_mul_overflow(bytes, d.get<size_t>(), &bytes),
                where + "shape entry " + d.dump() + " makes the tensor too large");
        e.shape.push_back(d.get<int64_t>());
    }
    const auto& off = j["data_offsets"];
    require(off.is_array() && off.size() == 2 && off[0].is_number_unsigned() &&
                off[1].is_number_unsigned(),
            where + "data_offsets must be two non-negative integers");
    e.begin = off[0].get<size_t>();
    e.end = off[1].get<size_t>();
    require(e.begin <= e.end && e.end - e.begin == bytes,
            where + "data_offsets do not match dtype and shape " + shape_string(e.shape));
    return e;
}

// The tensors must tile the data section: sorted by offset, each begins where the one before
// it ended, from 0 to the end of the file (the format's rule: no overlap, no hole).
static void check_tiling(const std::string& path,
                         const std::map<std::string, SafetensorsFile::Entry>& entries,
                         uint64_t data_size) {
    std::vector<std::pair<const std::string*, const SafetensorsFile::Entry*>> order;
    for (const auto& [name, e] : entries) order.push_back({&name, &e});
    std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
        const auto& x = *a.second;
        const auto& y = *b.second;
        return std::pair(x.begin, x.end) < std::pair(y.begin, y.end);
    });
    uint64_t at = 0;
    const std::string* before = nullptr;
    for (const auto& [name, e] : order) {
        const std::string tensor = path + ": tensor '" + *name + "' (data_offsets [" +
                                   std::to_string(e->begin) + ", " + std::to_string(e->end) + "])";
        require(e->begin >= at, tensor + " overlaps tensor '" + (before ? *before : "") +
                                    "', which ends at " + std::to_string(at));
        require(e->begin == at, tensor + " leaves bytes " + std::to_string(at) + ".." +
                                    std::to_string(e->begin) + " of the data unused");
        at = e->end;
        before = name;
    }
    require(at <= data_size, path + ": truncated: the header describes " + std::to_string(at) +
                                 " data bytes, the file holds " + std::to_string(data_size));
    require(at == data_size, path + ": " + std::to_string(data_size - at) +
                                 " trailing bytes after the " + std::to_string(at) +
                                 " data bytes the header describes");
}

SafetensorsFile SafetensorsFile::read(const std::string& path) {
    SafetensorsFile f;
    f.path_ = path;
    const InputFile file(path);
    require(file.size() >= 8, path + ": truncated safetensors file (" +
                                  std::to_string(file.size()) + " bytes, no header)");
    uint64_t header_len;
    file.read(0, reinterpret_cast<char*>(&header_len), 8);
    require(header_len <= kMaxHeaderBytes,
            path + ": not safetensors: header length " + std::to_string(header_len) +
                " is over the format's limit of " + std::to_string(kMaxHeaderBytes));
    require(header_len <= file.size() - 8,
            path + ": truncated or not safetensors (header length " +
                std::to_string(header_len) + " exceeds file size " + std::to_string(file.size()) +
                ")");
    f.data_start_ = 8 + header_len;
    std::string header_text(header_len, '\0');
    file.read(8, header_text.data(), header_len);
    const nlohmann::json header = parse_json(header_text, path + ": header");
    require(header.is_object(), path + ": safetensors header is not a JSON object");
    for (const auto& [name, value] : header.items()) {
        if (name == "__metadata__") {
            require(value.is_object(), path + ": __metadata__ is not an object");
            for (const auto& [k, v] : value.items()) {
                require(v.is_string(), path + ": metadata '" + k + "' is not a string");
                f.metadata_[k] = v.get<std::string>();
            }
            continue;
        }
        f.entries_[name] = parse_entry(path, name, value);
    }
    // Every claim of the header holds before the data is read: its size is the file's.
    check_tiling(path, f.entries_, file.size() - f.data_start_);
    f.bytes_ = file.read_all(kMaxWholeFileBytes);
    auto crc = f.metadata_.find(kCrcKey);
    if (crc != f.metadata_.end()) {
        std::string_view data(f.bytes_.data() + f.data_start_, f.bytes_.size() - f.data_start_);
        require(std::to_string(crc32_of(data)) == crc->second,
                path + ": corrupted: data CRC-32 does not match the header");
    }
    return f;
}

const std::string& SafetensorsFile::meta(const std::string& key) const {
    auto it = metadata_.find(key);
    require(it != metadata_.end(), path_ + ": metadata has no '" + key + "'");
    return it->second;
}

void SafetensorsFile::require_only(const std::vector<std::string>& names) const {
    for (const auto& [name, entry] : entries_)
        require(std::find(names.begin(), names.end(), name) != names.end(),
                path_ + ": unexpected tensor '" + name + "'");
}

const SafetensorsFile::Entry& SafetensorsFile::checked(const std::string& name,
                                                      const std::vector<std::string>& dtypes,
                                                      const std::vector<int64_t>& shape) const {
    auto it = entries_.find(name);
    require(it != entries_.end(), path_ + ": missing tensor '" + name + "'");
    const Entry& e = it->second;
    std::string expected;
    for (const std::string& d : dtypes) expected += (expected.empty() ? "" : " or ") + d;
    require(std::find(dtypes.begin(), dtypes.end(), e.dtype) != dtypes.end(),
            path_ + ": tensor '" + name + "' is " + e.dtype + ", expected " + expected);
    require(e.shape == shape, path_ + ": tensor '" + name + "' has shape " +
                                  shape_string(e.shape) + ", expected " + shape_string(shape));
    return e;
}

void SafetensorsFile::read_f32(const std::string& name, const std::vector<int64_t>& shape,
                               float* out) const {
    const Entry& e = checked(name, {"F32"}, shape);
    std::memcpy(out, bytes_.data() + data_start_ + e.begin, e.end - e.begin);
    require_finite(name, out, (e.end - e.begin) / sizeof(float));
}

void SafetensorsFile::require_finite(const std::string& name, const float* values,
                                     size_t n) const {
    const size_t bad = first_non_finite(values, n);
    if (bad < n)
        throw Error(path_ + ": tensor '" + name + "' holds " + std::to_string(values[bad]) +
                    " at index " + std::to_string(bad) + " (NaN or Inf)");
}

// IEEE half to float, exactly: normals rebias the exponent, subnormals are scaled, and
// infinities and NaNs keep their payload.
static float half_to_float(uint16_t h) {
    const uint32_t sign = uint32_t(h & 0x8000) << 16, exponent = (h >> 10) & 0x1F,
                   mantissa = h & 0x3FF;
    uint32_t bits;
    if (exponent == 0x1F) {
        bits = sign | 0x7F800000u | (mantissa << 13);
    } else if (exponent != 0) {
        bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
    } else {
        const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
        std::memcpy(&bits, &magnitude, 4);
        bits |= sign;
    }
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

void SafetensorsFile::read_as_f32(const std::string& name, const std::vector<int64_t>& shape,
                                  float* out) const {
    const Entry& e = checked(name, {"F32", "F16", "BF16"}, shape);
    const char* data = bytes_.data() + data_start_ + e.begin;
    const size_t n = (e.end - e.begin) / dtype_size(e.dtype);
    if (e.dtype == "F32") std::memcpy(out, data, e.end - e.begin);
    for (size_t i = 0; e.dtype != "F32" && i < n; i++) {
        uint16_t word;
        std::memcpy(&word, data + 2 * i, 2);
        if (e.dtype == "F16") {
            out[i] = half_to_float(word);
        } else {  // bfloat16 is the top half of a float
            const uint32_t bits = uint32_t(word) << 16;
            std::memcpy(out + i, &bits, 4);
        }
    }
    require_finite(name, out, n);
}

void SafetensorsFile::read_i32(const std::string& name, const std::vector<int64_t>& shape,
                               int32_t* out) const {
    const Entry& e = checked(name, {"I32"}, shape);
    std::memcpy(out, bytes_.data() + data_start_ + e.begin, e.end - e.begin);
}

}  // namespace diloco
