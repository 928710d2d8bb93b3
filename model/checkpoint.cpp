// Model weights on disk in the Hugging Face GPT-2 format: Conv1D matrices stored [in, out]
// (ours are [out, in]) and the embedding without its padded rows, converted on the way.
#include "model/checkpoint.h"

#include <algorithm>
#include <climits>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "model/hf_weights.h"
#include "util/error.h"
#include "util/files.h"
#include "util/json_file.h"
#include "util/safetensors.h"

namespace diloco {

namespace {

// Hugging Face shape of one of our tensors.
std::vector<int64_t> hf_shape(const GptConfig& config, const ParamTensor& t) {
    if (t.name == "wte.weight") return {config.vocab, config.channels};
    if (t.is_matmul_weight) return {t.shape[1], t.shape[0]};
    return t.shape;
}

void transpose(const float* in, float* out, int64_t rows, int64_t cols) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) out[c * rows + r] = in[r * cols + c];
}

nlohmann::json hf_config(const GptConfig& c) {
    return {{"architectures", {"GPT2LMHeadModel"}},
            {"model_type", "gpt2"},
            {"vocab_size", c.vocab},
            {"n_positions", c.max_seq},
            {"n_ctx", c.max_seq},
            {"n_embd", c.channels},
            {"n_layer", c.layers},
            {"n_head", c.heads},
            {"activation_function", "gelu_new"},
            {"layer_norm_epsilon", 1e-5},
            {"tie_word_embeddings", true},
            {"bos_token_id", c.eot},
            {"eos_token_id", c.eot},
            // We train without dropout; transformers' defaults (0.1) would differ in train mode.
            {"resid_pdrop", 0.0},
            {"embd_pdrop", 0.0},
            {"attn_pdrop", 0.0},
            {"summary_first_dropout", 0.0},
            {"dtype", "float32"},
            {"diloco_padded_vocab", c.padded_vocab}};
}

// The end-of-text id a config names under key, or fallback when the key is absent or null.
int token_id(const nlohmann::json& j, const char* key, int vocab, int fallback,
             const std::string& path) {
    if (!j.contains(key) || j[key].is_null()) return fallback;
    return int(json_int(j, key, path, 0, vocab - 1));
}

// The optional fields of transformers' GPT2Config that we read or that change what it computes,
// each of its type (and range), so a wrong type is refused here rather than compared away.
void check_optional_fields(const nlohmann::json& j, const std::string& path) {
    auto present = [&](const char* key) { return j.contains(key) && !j[key].is_null(); };
    for (const char* key : {"resid_pdrop", "embd_pdrop", "attn_pdrop", "summary_first_dropout"})
        if (present(key)) json_number(j, key, path, 0.0, 1.0);
    for (const char* key : {"layer_norm_epsilon", "initializer_range"})
        if (present(key)) json_number(j, key, path, 0.0, 1.0);
    for (const char* key : {"tie_word_embeddings", "scale_attn_weights", "use_cache",
                            "scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn",
                            "add_cross_attention"})
        if (present(key)) json_bool(j, key, path);
    for (const char* key : {"activation_function", "dtype", "torch_dtype"})
        if (present(key)) json_string(j, key, path);
    if (present("architectures")) json_strings(j, "architectures", path);
    if (present("n_ctx")) json_int(j, "n_ctx", path, 1, kMaxSeq);
    if (present("n_inner")) json_int(j, "n_inner", path, 1, INT_MAX);
}

// A GPT-2 config may ask for what our model does not compute; refuse rather than differ.
void check_architecture(const nlohmann::json& j, const GptConfig& c, const std::string& path) {
    auto unsupported = [&](const char* key, const char* ours) {
        return path + ": " + key + " = " + j[key].dump() + " is not supported (ours: " + ours + ")";
    };
    if (j.contains("activation_function"))
        require(j["activation_function"] == "gelu_new" ||
                    j["activation_function"] == "gelu_pytorch_tanh",
                unsupported("activation_function", "GELU, tanh approximation"));
    if (j.contains("layer_norm_epsilon"))
        require(j["layer_norm_epsilon"] == 1e-5, unsupported("layer_norm_epsilon", "1e-5"));
    if (j.contains("n_inner") && !j["n_inner"].is_null())
        require(j["n_inner"] == 4 * c.channels, unsupported("n_inner", "4 n_embd"));
    if (j.contains("tie_word_embeddings"))
        require(j["tie_word_embeddings"] == true, unsupported("tie_word_embeddings", "true"));
    if (j.contains("scale_attn_weights"))
        require(j["scale_attn_weights"] == true, unsupported("scale_attn_weights", "true"));
    if (j.contains("add_cross_attention"))
        require(j["add_cross_attention"] == false, unsupported("add_cross_attention", "false"));
    if (j.contains("scale_attn_by_inverse_layer_idx"))
        require(j["scale_attn_by_inverse_layer_idx"] == false,
                unsupported("scale_attn_by_inverse_layer_idx", "false"));
}

}  // namespace

void save_model(const std::string& dir, const GptConfig& config, const std::vector<float>& params,
                const std::map<std::string, std::string>& metadata) {
    std::filesystem::create_directories(dir);
    ParamLayout layout = build_layout(config);
    require(params.size() == layout.total, "save_model: parameter count mismatch");
    std::vector<std::vector<float>> converted;  // keeps transposed copies alive until written
    std::vector<TensorToWrite> tensors;
    for (const ParamTensor& t : layout.tensors) {
        const float* data = params.data() + t.offset;
        if (t.is_matmul_weight) {
            converted.emplace_back(t.size);
            transpose(data, converted.back().data(), t.shape[0], t.shape[1]);
            data = converted.back().data();
        }
        tensors.push_back({t.name, hf_shape(config, t), data});
    }
    std::map<std::string, std::string> meta = metadata;
    meta["format"] = "pt";  // what transformers expects of a PyTorch-origin safetensors file
    write_safetensors(dir + "/model.safetensors", tensors, meta);
    write_file_atomic(dir + "/config.json", hf_config(config).dump(2) + "\n");
}

GptConfig read_config_json(const std::string& path) {
    const nlohmann::json j = read_json_file(path, kMaxJsonFileBytes);
    require(j.is_object(), path + ": expected a JSON object");
    const std::string type = json_string(j, "model_type", path);
    require(type == "gpt2", path + ": field \"model_type\" is \"" + type +
                                "\", expected \"gpt2\" (the only architecture diloco computes)");
    GptConfig c;
    c.vocab = int(json_int(j, "vocab_size", path, 1, kMaxVocab));
    c.max_seq = int(json_int(j, "n_positions", path, 1, kMaxSeq));
    c.channels = int(json_int(j, "n_embd", path, 1, kMaxChannels));
    c.layers = int(json_int(j, "n_layer", path, 1, kMaxLayers));
    c.heads = int(json_int(j, "n_head", path, 1, c.channels));
    c.padded_vocab = j.contains("diloco_padded_vocab")
                         ? int(json_int(j, "diloco_padded_vocab", path, c.vocab, kMaxVocab))
                         : pad_vocab(c.vocab);
    c.eot = token_id(j, "eos_token_id", c.vocab, c.vocab - 1, path);
    token_id(j, "bos_token_id", c.vocab, c.eot, path);  // unused, but a token or nothing
    check_optional_fields(j, path);
    check_architecture(j, c, path);
    try {
        validate(c);
    } catch (const Error& e) {
        throw Error(path + ": " + e.what());
    }
    return c;
}

namespace {

// transformers writes the output projection only when it is not tied to the embedding (and
// some versions write it anyway): a copy of the embedding is welcome, anything else is not ours.
void check_tied_head(const HfWeights& weights, const GptConfig& config, const float* wte) {
    if (!weights.contains("lm_head.weight")) return;
    std::vector<float> head(static_cast<size_t>(config.vocab) * config.channels);
    weights.read("lm_head.weight", {config.vocab, config.channels}, head.data());
    require(std::equal(head.begin(), head.end(), wte),
            weights.describe("lm_head.weight") +
                " differs from the token embedding; an untied output layer is not supported");
}

}  // namespace

ModelCheckpoint load_model(const std::string& dir) {
    require(path_kind(dir) == PathKind::kDirectory, dir + ": checkpoint directory not found");
    ModelCheckpoint ck;
    ck.config = read_config_json(dir + "/config.json");
    ParamLayout layout = build_layout(ck.config);
    HfWeights weights = HfWeights::open(dir);
    for (const std::string& name : weights.names()) {
        // Older transformers exports carry the causal mask as a buffer; it is not a parameter.
        if (name.ends_with(".attn.bias") || name.ends_with(".attn.masked_bias")) continue;
        bool known = name == "lm_head.weight";
        for (const ParamTensor& t : layout.tensors) known = known || t.name == name;
        require(known, weights.describe(name) + " is unexpected for this config");
    }
    // Every tensor is in the file with its shape before anything of the config's size is made.
    for (const ParamTensor& t : layout.tensors)
        weights.check(t.name, hf_shape(ck.config, t));
    ck.params.assign(layout.total, 0.0f);
    for (const ParamTensor& t : layout.tensors) {
        float* dst = ck.params.data() + t.offset;
        if (!t.is_matmul_weight) {
            weights.read(t.name, hf_shape(ck.config, t), dst);
            continue;
        }
        std::vector<float> hf(t.size);
        weights.read(t.name, hf_shape(ck.config, t), hf.data());
        transpose(hf.data(), dst, t.shape[1], t.shape[0]);
    }
    check_tied_head(weights, ck.config, ck.params.data() + layout.wte);
    ck.metadata = weights.metadata();
    return ck;
}

}  // namespace diloco
