// `diloco eval`: the validation loss and perplexity of a checkpoint on a dataset (the built-in
// corpus, a text file or token shards), computed exactly as `diloco train` evaluates; --dump
// writes every window's ids, logits and per-token losses for comparison with other code.
#include <climits>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "model/checkpoint.h"
#include "optim/inner.h"
#include "tools/commands.h"
#include "tools/data_source.h"
#include "tools/device.h"
#include "tools/options.h"
#include "util/error.h"
#include "util/safetensors.h"

namespace diloco {

namespace {

struct EvalOptions {
    std::string checkpoint;
    std::string data;
    double val_fraction = 0.1;
    int batch = 16;
    int seq = 0;  // 0: the model's context
    int val_batches = 0;  // 0: every validation window
    bool json = false;
    std::string dump;  // safetensors file of ids, logits and losses ("": none)
    DeviceOptions device;
};

// inputs and targets [windows, seq] (I32), logits [windows, seq, vocab], losses [windows, seq].
void write_dump(Gpt& model, const std::vector<TokenBatch>& batches, int seq,
                const std::string& path) {
    std::vector<int32_t> inputs, targets;
    ForwardOutputs all;
    for (const TokenBatch& b : batches) {
        ForwardOutputs out = model.forward_outputs(b.inputs.data(), b.targets.data(), b.B, b.T);
        inputs.insert(inputs.end(), b.inputs.begin(), b.inputs.end());
        targets.insert(targets.end(), b.targets.begin(), b.targets.end());
        all.logits.insert(all.logits.end(), out.logits.begin(), out.logits.end());
        all.losses.insert(all.losses.end(), out.losses.begin(), out.losses.end());
    }
    const int64_t windows = static_cast<int64_t>(inputs.size()) / seq;
    write_safetensors(path,
                      {{"inputs", {windows, seq}, inputs.data(), "I32"},
                       {"targets", {windows, seq}, targets.data(), "I32"},
                       {"logits", {windows, seq, model.config().vocab}, all.logits.data()},
                       {"losses", {windows, seq}, all.losses.data()}},
                      {});
}

void run_eval(const EvalOptions& o) {
    ModelCheckpoint ck = load_model(o.checkpoint);
    const int seq = o.seq == 0 ? ck.config.max_seq : o.seq;
    require(seq > 0 && seq <= ck.config.max_seq,
            "--seq " + std::to_string(seq) + " is outside the model's context of 1.." +
                std::to_string(ck.config.max_seq) + " tokens (" + o.checkpoint + ")");
    std::unique_ptr<TrainData> data = open_data(o.data, {0, 1, seq, o.val_fraction});
    require(data->vocab() == ck.config.vocab,
            data->source() + ": its vocabulary of " + std::to_string(data->vocab()) +
                " tokens differs from the model's " + std::to_string(ck.config.vocab) + " (" +
                o.checkpoint + ")");
    const auto batches =
        data->val_batches(o.batch, seq, o.val_batches == 0 ? INT_MAX : o.val_batches);
    Device device = make_device(o.device, NodePlace{});
    Gpt model(*device.backend, ck.config, o.batch, seq);
    model.set_params(ck.params);
    // open_data refuses a validation set shorter than one window, so rows > 0.
    auto [sum, rows] = validation_share(model, batches, 0, 1);
    const double loss = sum / static_cast<double>(rows);
    require(std::isfinite(loss), o.checkpoint + ": validation loss " + std::to_string(loss) +
                                     " is not finite (the model's weights overflow)");
    if (!o.dump.empty()) write_dump(model, batches, seq, o.dump);
    const double ppl = std::exp(loss), bits = loss / std::log(2.0);
    const auto saved_at = ck.metadata.find("diloco_step");
    const std::string step = saved_at == ck.metadata.end() ? "" : saved_at->second;
    if (o.json) {
        nlohmann::json record = {{"checkpoint", o.checkpoint}, {"data", data->source()},
                                 {"step", step}, {"windows", rows}, {"seq", seq},
                                 {"val_loss", loss}, {"val_ppl", ppl}, {"val_bits", bits}};
        std::printf("%s\n", record.dump().c_str());
        return;
    }
    std::printf("%s (step %s) on %s: %zu windows of %d tokens | val loss %.4f | val ppl %.3f | "
                "%.4f bits per token\n",
                o.checkpoint.c_str(), step.c_str(), data->source().c_str(), rows, seq, loss, ppl,
                bits);
}

}  // namespace

void add_eval_command(CLI::App& app) {
    auto o = std::make_shared<EvalOptions>();
    CLI::App* cmd = app.add_subcommand("eval", "validation loss and perplexity of a checkpoint");
    cmd->add_option("--checkpoint", o->checkpoint, "checkpoint directory")->required();
    add_data_options(*cmd, o->data, o->val_fraction);
    add_number(*cmd, "--batch", o->batch, {.min = 1, .max = 1 << 16},
               "validation windows per forward pass");
    add_number(*cmd, "--seq", o->seq, {.min = 0, .max = 1 << 20},
               "tokens per window (0: the model's context)");
    add_number(*cmd, "--val-batches", o->val_batches, {.min = 0},
               "batches of validation windows to use (0: all of them)");
    cmd->add_flag("--json", o->json, "print one JSON object instead of a line of text");
    cmd->add_option("--dump", o->dump,
                    "also write the windows' ids, logits and per-token losses to this "
                    "safetensors file (vocab floats per token: limit --val-batches)");
    add_device_options(*cmd, o->device);
    cmd->callback([o] { run_eval(*o); });
}

}  // namespace diloco
