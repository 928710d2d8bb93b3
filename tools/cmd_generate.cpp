// `diloco generate`: loads a checkpoint and samples a continuation of a prompt, token by token
// (bytes, or the tokenizer saved beside the checkpoint), with temperature and optional top-k.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>

#include "comm/codec.h"
#include "data/tokenizer.h"
#include "model/checkpoint.h"
#include "model/gpt.h"
#include "tools/commands.h"
#include "tools/device.h"
#include "tools/options.h"
#include "util/error.h"
#include "util/rng.h"

namespace diloco {

namespace {

struct GenerateOptions {
    std::string checkpoint;
    std::string prompt = "\n";
    int tokens = 200;
    float temperature = 0.8f;
    int top_k = 0;
    uint64_t seed = 42;
    DeviceOptions device;
};

int sample(std::vector<float> logits, float temperature, int top_k, Rng& rng) {
    if (temperature <= 0) return static_cast<int>(std::max_element(logits.begin(), logits.end()) -
                                                  logits.begin());
    if (top_k > 0 && top_k < static_cast<int>(logits.size())) {
        std::vector<float> sorted = logits;
        std::nth_element(sorted.begin(), sorted.begin() + (top_k - 1), sorted.end(),
                         std::greater<float>());
        float kth = sorted[top_k - 1];
        for (float& l : logits)
            if (l < kth) l = -INFINITY;
    }
    float max = *std::max_element(logits.begin(), logits.end());
    std::vector<double> p(logits.size());
    double sum = 0;
    for (size_t i = 0; i < p.size(); i++) sum += p[i] = std::exp((logits[i] - max) / temperature);
    double u = rng.uniform() * sum;
    for (size_t i = 0; i < p.size(); i++)
        if ((u -= p[i]) <= 0) return static_cast<int>(i);
    return static_cast<int>(p.size() - 1);
}

// Ids and text: bytes for a byte-level model, else the tokenizer that `diloco train` saved
// beside the checkpoint.
class TextCodec {
public:
    TextCodec(const std::string& dir, int vocab) {
        if (vocab == 256) return;
        require(std::filesystem::exists(dir + "/encoder.json"),
                dir + ": vocabulary " + std::to_string(vocab) +
                    " is not byte-level (256) and there is no tokenizer (encoder.json) beside it");
        tok_ = Tokenizer::load(dir);
        require(tok_->vocab_size() == vocab,
                dir + ": the tokenizer's vocabulary " + std::to_string(tok_->vocab_size()) +
                    " differs from the model's " + std::to_string(vocab));
    }
    std::vector<int32_t> encode(const std::string& text) const {
        if (tok_) return tok_->encode(text);
        std::vector<int32_t> ids;
        for (unsigned char byte : text) ids.push_back(byte);
        return ids;
    }
    std::string decode(int32_t id) const {
        return tok_ ? tok_->token_bytes(id) : std::string(1, static_cast<char>(id));
    }

private:
    std::optional<Tokenizer> tok_;
};

void run_generate(const GenerateOptions& o) {
    ModelCheckpoint ck = load_model(o.checkpoint);
    TextCodec codec(o.checkpoint, ck.config.vocab);
    Device device = make_device(o.device, NodePlace{});
    const int window = ck.config.max_seq;
    Gpt model(*device.backend, ck.config, 1, window);
    model.set_params(ck.params);
    std::vector<int32_t> context = codec.encode(o.prompt);
    Rng rng(o.seed, 0);
    // The prompt goes out with the first token, so that a model that cannot sample prints none.
    bool prompt_written = false;
    auto write_prompt = [&] {
        if (!prompt_written) std::fwrite(o.prompt.data(), 1, o.prompt.size(), stdout);
        prompt_written = true;
    };
    for (int i = 0; i < o.tokens; i++) {
        int T = std::min<int>(window, static_cast<int>(context.size()));
        std::vector<float> logits = model.last_logits(context.data() + context.size() - T, T);
        require(check_finite(logits.data(), logits.size()) == logits.size(),
                o.checkpoint + ": the model's logits are not finite (its weights overflow); "
                               "nothing generated");
        write_prompt();
        int next = sample(std::move(logits), o.temperature, o.top_k, rng);
        context.push_back(next);
        std::string piece = codec.decode(next);
        std::fwrite(piece.data(), 1, piece.size(), stdout);
        std::fflush(stdout);
    }
    write_prompt();
    std::fputc('\n', stdout);
}

}  // namespace

void add_generate_command(CLI::App& app) {
    auto o = std::make_shared<GenerateOptions>();
    CLI::App* cmd = app.add_subcommand("generate", "sample text from a trained checkpoint");
    cmd->add_option("--checkpoint", o->checkpoint, "checkpoint directory")->required();
    cmd->add_option("--prompt", o->prompt, "text to continue")->capture_default_str();
    add_number(*cmd, "--tokens", o->tokens, {.min = 0, .max = 1 << 30}, "tokens to sample");
    add_number(*cmd, "--temperature", o->temperature, {.min = 0},
               "softmax temperature (0: greedy)");
    add_number(*cmd, "--top-k", o->top_k, {.min = 0}, "sample among the k likeliest (0: all)");
    add_number(*cmd, "--seed", o->seed, {}, "sampling seed");
    add_device_options(*cmd, o->device);
    cmd->callback([o] { run_generate(*o); });
}

}  // namespace diloco
