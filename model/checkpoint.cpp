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

int json_int(const nlohmann::json& j, const char* key, const std::string& path) {
    require(j.contains(key) && j[key].is_number_integer(),
            path + ": missing or non-integer '" + key + "'");
    const nlohmann::json& v = j[key];
    const bool fits = v.is_number_unsigned() ? v.get<uint64_t>() <= INT_MAX
                                             : v.get<int64_t>() >= INT_MIN && v.get<int64_t>() <= INT_MAX;
    require(fits, path + ": '" + key + "' = " + v.dump() + " is out of range");
    return v.get<int>();
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
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(read_file(path));
    } catch (const nlohmann::json::exception& e) {
        throw Error(path + ": malformed JSON (" + e.what() + ")");
    }
    require(j.is_object(), path + ": expected a JSON object");
    GptConfig c;
    c.vocab = json_int(j, "vocab_size", path);
    c.max_seq = json_int(j, "n_positions", path);
    c.channels = json_int(j, "n_embd", path);
    c.layers = json_int(j, "n_layer", path);
    c.heads = json_int(j, "n_head", path);
    const bool padded = j.contains("diloco_padded_vocab");
    if (padded) c.padded_vocab = json_int(j, "diloco_padded_vocab", path);
    const bool has_eos = j.contains("eos_token_id") && !j["eos_token_id"].is_null();
    c.eot = has_eos ? json_int(j, "eos_token_id", path) : c.vocab - 1;
    check_architecture(j, c, path);
    try {
        if (!padded) c.padded_vocab = pad_vocab(c.vocab);
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
    require(std::filesystem::is_directory(dir), dir + ": checkpoint directory not found");
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
