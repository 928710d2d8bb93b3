// Reading and writing safetensors files (the Hugging Face format): 8-byte header length, JSON
// header of names, dtypes, shapes and offsets, then raw little-endian data. Reads and writes F32,
// F16, BF16 and I32 (token ids); reads the floats of any of the three as F32.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace diloco {

struct TensorToWrite {
    std::string name;
    std::vector<int64_t> shape;
    const void* data;
    std::string dtype = "F32";  // or F16, BF16 (raw 16-bit words), I32
};

// Writes atomically; adds a CRC-32 of the data section to the metadata so corruption is caught.
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata);

class SafetensorsFile {
public:
    struct Entry {
        std::string dtype;
        std::vector<int64_t> shape;
        size_t begin, end;  // offsets into the data section
    };

    // Checks the header, every offset and size, and the CRC when the file carries one.
    static SafetensorsFile read(const std::string& path);

    const std::string& path() const { return path_; }
    const std::map<std::string, Entry>& entries() const { return entries_; }
    const std::map<std::string, std::string>& metadata() const { return metadata_; }
    // The metadata value for key; an Error naming the file when absent.
    const std::string& meta(const std::string& key) const;
    // An Error naming the first tensor of the file that is not in names.
    void require_only(const std::vector<std::string>& names) const;
    // The entry of tensor name after checking its dtype and shape; Errors name the file.
    const Entry& checked(const std::string& name, const std::vector<std::string>& dtypes,
                         const std::vector<int64_t>& shape) const;
    // Copies tensor name into out after checking it is F32 with exactly this shape; a NaN or
    // Inf in it is an Error.
    void read_f32(const std::string& name, const std::vector<int64_t>& shape, float* out) const;
    // Tensor name (F32, F16 or BF16, exactly this shape) as F32: 16-bit floats widen exactly;
    // a NaN or Inf is an Error.
    void read_as_f32(const std::string& name, const std::vector<int64_t>& shape,
                     float* out) const;
    // The same for an I32 tensor (token ids).
    void read_i32(const std::string& name, const std::vector<int64_t>& shape, int32_t* out) const;

private:
    // An Error naming the file, the tensor and the index of its first NaN or Inf.
    void require_finite(const std::string& name, const float* values, size_t n) const;
    std::string path_;
    std::string bytes_;
    size_t data_start_ = 0;
    std::map<std::string, Entry> entries_;
    std::map<std::string, std::string> metadata_;
};

}  // namespace diloco
