// `diloco generate`: loads a checkpoint and samples a continuation of a prompt, byte by byte,
// with temperature and optional top-k, printing the prompt and the sample to stdout.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>

#include "model/checkpoint.h"
#include "model/gpt.h"
#include "tools/commands.h"
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

void run_generate(const GenerateOptions& o) {
    require(o.tokens >= 0, "--tokens must not be negative");
    require(!o.prompt.empty(), "--prompt must not be empty");
    ModelCheckpoint ck = load_model(o.checkpoint);
    require(ck.config.vocab == 256, o.checkpoint + ": vocabulary " +
                                        std::to_string(ck.config.vocab) +
                                        " is not byte-level (256); no tokenizer to decode it");
    std::unique_ptr<Backend> backend = make_cpu_backend();
    const int window = ck.config.max_seq;
    Gpt model(*backend, ck.config, 1, window);
    model.set_params(ck.params);
    std::vector<int32_t> context(o.prompt.begin(), o.prompt.end());
    for (int32_t& t : context) t = static_cast<uint8_t>(t);
    std::fwrite(o.prompt.data(), 1, o.prompt.size(), stdout);
    Rng rng(o.seed, 0);
    for (int i = 0; i < o.tokens; i++) {
        int T = std::min<int>(window, static_cast<int>(context.size()));
        std::vector<float> logits = model.last_logits(context.data() + context.size() - T, T);
        int next = sample(std::move(logits), o.temperature, o.top_k, rng);
        context.push_back(next);
        std::fputc(next, stdout);
        std::fflush(stdout);
    }
    std::fputc('\n', stdout);
}

}  // namespace

void add_generate_command(CLI::App& app) {
    auto o = std::make_shared<GenerateOptions>();
    CLI::App* cmd = app.add_subcommand("generate", "sample text from a trained checkpoint");
    cmd->add_option("--checkpoint", o->checkpoint, "checkpoint directory")->required();
    cmd->add_option("--prompt", o->prompt, "text to continue")->capture_default_str();
    cmd->add_option("--tokens", o->tokens, "tokens to sample")->capture_default_str();
    cmd->add_option("--temperature", o->temperature, "softmax temperature (0: greedy)")
        ->capture_default_str();
    cmd->add_option("--top-k", o->top_k, "sample among the k likeliest (0: all)")
        ->capture_default_str();
    cmd->add_option("--seed", o->seed, "sampling seed")->capture_default_str();
    cmd->callback([o] { run_generate(*o); });
}

}  // namespace diloco
