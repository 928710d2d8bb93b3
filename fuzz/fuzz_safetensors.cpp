// Fuzz target: a safetensors file, read and checked, then every F32 and I32 tensor copied out.
// Any outcome but success or a diloco::Error (crash, other exception, sanitizer report) is a bug.
#include <vector>

#include "fuzz/harness.h"
#include "util/error.h"
#include "util/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace diloco;
    try {
        SafetensorsFile file =
            SafetensorsFile::read(fuzz::scratch_file("in.safetensors", fuzz::as_text(data, size)));
        for (const auto& [name, entry] : file.entries()) {
            std::vector<float> values((entry.end - entry.begin) / sizeof(float));
            if (entry.dtype == "F32") file.read_f32(name, entry.shape, values.data());
            std::vector<int32_t> ids((entry.end - entry.begin) / sizeof(int32_t));
            if (entry.dtype == "I32") file.read_i32(name, entry.shape, ids.data());
        }
    } catch (const Error&) {
    }
    return 0;
}
