// Training a byte-level BPE vocabulary on text with the GPT-2 pre-tokeniser: 256 byte tokens, then
// one token per merge in the order learned, then <|endoftext|>; save it with Tokenizer::save_gpt2.
#pragma once

#include <string_view>

#include "data/tokenizer.h"

namespace diloco {

// Learns up to vocab_size - 257 merges (fewer when no adjacent pair is left; the vocabulary is
// then smaller). Token b is byte b, merge i makes token 256 + i, and <|endoftext|> comes last.
// Deterministic: each step merges the most frequent adjacent pair inside pre-tokens, ties going to
// the pair whose (left bytes, right bytes) is lexicographically smallest.
Tokenizer train_bpe(std::string_view text, int vocab_size);

}  // namespace diloco
