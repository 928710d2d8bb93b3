// Fuzz target: a prepared data directory's manifest.json.
#include "data/manifest.h"
#include "fuzz/harness.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace diloco;
    try {
        read_manifest(fuzz::scratch_file("manifest.json", fuzz::as_text(data, size)));
    } catch (const Error&) {
    }
    return 0;
}
