// Fuzz target: tokenizer files. The input is encoder.json, vocab.bpe and tokenizer.json (split by
// fuzz::kSplit); both formats are loaded, and what loads encodes and decodes a text exactly.
#include <string>

#include "data/tokenizer.h"
#include "fuzz/harness.h"
#include "util/error.h"

static void round_trip(const diloco::Tokenizer& tok) {
    const std::string text = "Hello, world! 123 <|endoftext|> \xff\xfe caf\xc3\xa9  \n";
    if (tok.decode(tok.encode(text)) != text) __builtin_trap();
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace diloco;
    const std::vector<std::string> parts = fuzz::split_parts(fuzz::as_text(data, size), 3);
    const std::string encoder = fuzz::scratch_file("encoder.json", parts[0]);
    const std::string bpe = fuzz::scratch_file("vocab.bpe", parts[1]);
    const std::string hf = fuzz::scratch_file("tokenizer.json", parts[2]);
    try {
        round_trip(Tokenizer::load_gpt2(encoder, bpe));
    } catch (const Error&) {
    }
    try {
        round_trip(Tokenizer::load_hf(hf));
    } catch (const Error&) {
    }
    return 0;
}
