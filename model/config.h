// The GPT configuration (GPT-2 architecture: pre-LayerNorm, learned positions, GELU, tied
// embedding) and its named presets, from a CPU-sized toy to the DiLoCo paper's models.
#pragma once

#include <string>
#include <vector>

namespace diloco {

struct GptConfig {
    int vocab = 0;         // real vocabulary (set by the data's tokenizer)
    int padded_vocab = 0;  // vocab rounded up for matmul speed; the extra logits are ignored
    int max_seq = 0;       // rows of the position table
    int layers = 0;
    int heads = 0;
    int channels = 0;
    int eot = 0;           // the end-of-text token: transformers' bos and eos
};

// Limits far above any model this trainer can hold, so that a corrupt config.json is refused
// before its sizes are multiplied or allocated (every tensor size then fits in 64 bits).
constexpr int kMaxVocab = 1 << 24;
constexpr int kMaxLayers = 1024;
constexpr int kMaxChannels = 1 << 16;
constexpr int kMaxSeq = 1 << 20;

// Shape of a named preset (tiny, gpt2-124m, paper-60m, paper-150m, paper-400m) with the given
// vocabulary, end-of-text the last id (as GPT-2's and our trained tokenizers have it); an Error
// listing the presets when the name is unknown.
GptConfig preset_config(const std::string& name, int vocab);
std::vector<std::string> preset_names();

// A shape given by hand (tests, small experiments), its vocabulary padded as the presets pad it.
GptConfig gpt_config(int vocab, int max_seq, int layers, int heads, int channels);

// Rounds vocab up to a multiple of 128 (50,257 -> 50,304 as in llm.c); small vocabularies to 64.
// An Error outside 1..kMaxVocab.
int pad_vocab(int vocab);

// Throws an Error naming the first impossible field or the first one past its limit.
void validate(const GptConfig& config);

}  // namespace diloco
