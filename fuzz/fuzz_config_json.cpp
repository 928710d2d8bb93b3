// Fuzz target: a checkpoint's config.json alone, the sizes it gives checked before any
// allocation, and the layout it implies built.
#include "fuzz/harness.h"
#include "model/checkpoint.h"
#include "model/layout.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace diloco;
    try {
        GptConfig config =
            read_config_json(fuzz::scratch_file("config.json", fuzz::as_text(data, size)));
        build_layout(config);
    } catch (const Error&) {
    }
    return 0;
}
