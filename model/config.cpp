// The GPT configuration, its presets and its validation.
// Paper shapes follow DiLoCo (arXiv 2311.08105): width, depth, head dim 64 or 128, sequence
// 1,024. Its 896-wide models list 16 heads of 64 (attention width 1,024 != 896); a GPT-2 block
// needs heads x head dim = width, so those presets keep width 896 and head dim 64 with 14 heads.
#include "model/config.h"

#include <map>

#include "util/error.h"

namespace diloco {

namespace {
struct Shape {
    int layers, heads, channels, max_seq;
};
const std::map<std::string, Shape>& presets() {
    static const std::map<std::string, Shape> table = {
        {"tiny", {4, 4, 128, 128}},
        {"gpt2-124m", {12, 12, 768, 1024}},
        {"paper-60m", {3, 14, 896, 1024}},
        {"paper-150m", {12, 14, 896, 1024}},
        {"paper-400m", {12, 12, 1536, 1024}},
    };
    return table;
}
}  // namespace

std::vector<std::string> preset_names() {
    std::vector<std::string> names;
    for (const auto& [name, shape] : presets()) names.push_back(name);
    return names;
}

GptConfig gpt_config(int vocab, int max_seq, int layers, int heads, int channels) {
    GptConfig c;
    c.vocab = vocab;
    c.padded_vocab = pad_vocab(vocab);
    c.max_seq = max_seq;
    c.layers = layers;
    c.heads = heads;
    c.channels = channels;
    return c;
}

int pad_vocab(int vocab) {
    require(vocab > 0 && vocab <= kMaxVocab, "vocabulary size " + std::to_string(vocab) +
                                                 " is outside 1.." + std::to_string(kMaxVocab));
    int multiple = vocab > 1024 ? 128 : 64;
    return (vocab + multiple - 1) / multiple * multiple;
}

GptConfig preset_config(const std::string& name, int vocab) {
    auto it = presets().find(name);
    if (it == presets().end()) {
        std::string known;
        for (const std::string& n : preset_names()) known += (known.empty() ? "" : ", ") + n;
        throw Error("unknown preset '" + name + "' (known: " + known + ")");
    }
    GptConfig c;
    c.vocab = vocab;
    c.padded_vocab = pad_vocab(vocab);
    c.max_seq = it->second.max_seq;
    c.layers = it->second.layers;
    c.heads = it->second.heads;
    c.channels = it->second.channels;
    c.eot = vocab - 1;
    return c;
}

void validate(const GptConfig& c) {
    auto field = [](const char* name, int value) {
        return std::string(name) + " = " + std::to_string(value);
    };
    auto in_range = [&](const char* name, int value, int low, int high) {
        require(value >= low && value <= high,
                "impossible config: " + field(name, value) + ", must be within " +
                    std::to_string(low) + ".." + std::to_string(high));
    };
    in_range("vocab", c.vocab, 1, kMaxVocab);
    in_range("padded_vocab", c.padded_vocab, c.vocab, kMaxVocab);
    in_range("layers", c.layers, 1, kMaxLayers);
    in_range("channels", c.channels, 1, kMaxChannels);
    in_range("heads", c.heads, 1, c.channels);
    require(c.channels % c.heads == 0, "impossible config: " + field("heads", c.heads) +
                                           " does not divide " + field("channels", c.channels));
    in_range("max_seq", c.max_seq, 1, kMaxSeq);
    require(c.eot >= 0 && c.eot < c.vocab,
            "impossible config: " + field("eot", c.eot) + " is not a token of the vocabulary");
}

}  // namespace diloco
