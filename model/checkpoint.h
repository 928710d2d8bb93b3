// Model weights on disk: a directory with model.safetensors (Hugging Face GPT-2 names and
// layouts, loadable by `transformers`) and config.json (a GPT-2 config with our padding).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/layout.h"

namespace diloco {

struct ModelCheckpoint {
    GptConfig config;
    std::vector<float> params;  // our flat layout
    std::map<std::string, std::string> metadata;
};

// Creates dir if needed; each file is written atomically.
void save_model(const std::string& dir, const GptConfig& config, const std::vector<float>& params,
                const std::map<std::string, std::string>& metadata);
// Checks every name, dtype and shape against the config; Errors name the file and tensor.
ModelCheckpoint load_model(const std::string& dir);

GptConfig read_config_json(const std::string& path);

}  // namespace diloco
