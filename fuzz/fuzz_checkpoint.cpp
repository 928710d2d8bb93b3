// Fuzz target: a model checkpoint directory, config.json then model.safetensors (split by
// fuzz::kSplit), loaded as `diloco generate` and `--resume` load it.
#include <filesystem>

#include "fuzz/harness.h"
#include "model/checkpoint.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace diloco;
    const std::vector<std::string> parts = fuzz::split_parts(fuzz::as_text(data, size), 2);
    const std::string dir = fuzz::scratch_dir() + "/checkpoint";
    std::filesystem::create_directories(dir);
    fuzz::scratch_file("checkpoint/config.json", parts[0]);
    fuzz::scratch_file("checkpoint/model.safetensors", parts[1]);
    try {
        load_model(dir);
    } catch (const Error&) {
    }
    return 0;
}
