// Fuzz target: a JSON-lines input, gzipped or not (zlib reads plain files as they are), read
// the way `diloco prepare` reads it: lines, records, and each record's text field.
#include "data/documents.h"
#include "fuzz/harness.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace diloco;
    const std::string path = fuzz::scratch_file("in.jsonl.gz", fuzz::as_text(data, size));
    // Reads of a few bytes put line ends across reads and spare the sanitizers a megabyte of
    // buffers per input (the default cost them 100 inputs a second).
    try {
        DocumentReader reader({path}, "text", false, 61);
        Document doc;
        while (reader.next(doc)) {
        }
    } catch (const Error&) {
    }
    try {
        GzReader gz(path, 5);
        std::string line;
        while (gz.read_line(line)) {
        }
    } catch (const Error&) {
    }
    return 0;
}
