// Fuzz target: the tokenizer's encode on arbitrary bytes. Every way of encoding must give the
// same ids, and decoding them must give the bytes back.
#include "data/bpe_trainer.h"
#include "data/tokenizer.h"
#include "fuzz/harness.h"

static const diloco::Tokenizer& tokenizer() {
    static const diloco::Tokenizer tok = diloco::train_bpe(
        "The quick brown fox jumps over the lazy dog's back; it's 1234 o'clock, isn't it? "
        "Caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e   tabs\t\tand\r\nnewlines\n\n"
        "<|endoftext|> they'll we've I'm you'd she's   the the the there these those",
        420);
    return tok;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace diloco;
    const Tokenizer& tok = tokenizer();
    const std::string_view text = fuzz::as_text(data, size);
    const std::vector<int32_t> ids = tok.encode(text);
    if (tok.decode(ids) != text) __builtin_trap();
    if (tok.encode_parallel(text, 3) != ids) __builtin_trap();
    std::vector<int32_t> batched;
    BatchEncoder batch(tok);
    batch.encode(text, batched);
    if (batched != ids) __builtin_trap();
    if (tok.decode(tok.encode_with_special(text)) != text) __builtin_trap();
    return 0;
}
