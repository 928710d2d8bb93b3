// `diloco train`: parses the run's options (flags or a TOML --config), wires data, model and
// the inner trainer, prints a step line, and writes JSON-lines metrics and checkpoints.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "data/byte_corpus.h"
#include "model/checkpoint.h"
#include "optim/inner.h"
#include "tools/commands.h"
#include "tools/config_file.h"
#include "util/error.h"

namespace diloco {

namespace {

struct TrainOptions {
    std::string config;
    std::string preset = "tiny";
    std::string data;  // empty: the built-in corpus
    double val_fraction = 0.1;
    int steps = 1000;
    int stop_at = 0;
    int batch = 16;
    int seq = 128;
    float lr = 1e-3f;
    int warmup = 100;
    float min_lr_fraction = 0.1f;
    float weight_decay = 0.1f;
    float grad_clip = 1.0f;
    uint64_t seed = 1337;
    int eval_every = 100;
    int val_batches = 20;
    std::string log;
    std::string save;
    int save_every = 0;
    std::string resume;
    std::string device = "cpu";
};

std::unique_ptr<Backend> make_backend(const std::string& device) {
    require(device == "cpu", "unknown --device '" + device + "' (this build has: cpu)");
    return make_cpu_backend();
}

InnerConfig inner_config(const TrainOptions& o) {
    require(o.steps > 0, "--steps must be positive, got " + std::to_string(o.steps));
    require(o.batch > 0, "--batch must be positive, got " + std::to_string(o.batch));
    require(o.seq > 0, "--seq must be positive, got " + std::to_string(o.seq));
    require(o.lr > 0 && std::isfinite(o.lr), "--lr must be positive and finite");
    require(o.warmup >= 0, "--warmup must not be negative");
    InnerConfig c;
    c.batch = o.batch;
    c.seq = o.seq;
    c.schedule = {o.lr, o.warmup, o.steps, o.min_lr_fraction};
    c.adamw.weight_decay = o.weight_decay;
    c.grad_clip = o.grad_clip;
    c.seed = o.seed;
    return c;
}

std::unique_ptr<TrainData> load_data(const TrainOptions& o) {
    if (o.data.empty())
        return std::make_unique<ByteCorpus>(ByteCorpus::builtin(o.val_fraction, o.seq));
    return std::make_unique<ByteCorpus>(ByteCorpus::from_file(o.data, o.val_fraction, o.seq));
}

class MetricsLog {
public:
    MetricsLog(const std::string& path, bool append) {
        if (path.empty()) return;
        out_.open(path, append ? std::ios::app : std::ios::trunc);
        require(out_.good(), path + ": cannot open the metrics log for writing");
    }
    void write(const nlohmann::json& record) {
        if (!out_.is_open()) return;
        out_ << record.dump() << "\n";
        out_.flush();  // a crashed run keeps every finished step
    }

private:
    std::ofstream out_;
};

void run_train(const TrainOptions& o) {
    InnerConfig config = inner_config(o);
    require(o.stop_at >= 0 && o.stop_at <= o.steps, "--stop-at must be within 0..--steps");
    std::unique_ptr<TrainData> data = load_data(o);
    GptConfig model = preset_config(o.preset, data->vocab());
    std::unique_ptr<Backend> backend = make_backend(o.device);
    InnerTrainer trainer(*backend, model, *data, config);
    if (o.resume.empty()) {
        trainer.init_params();
    } else {
        trainer.resume(o.resume);
    }
    std::printf("diloco train: preset %s (%zu parameters), data %s (%s), %s backend\n",
                o.preset.c_str(), trainer.model().num_params(), data->source().c_str(),
                data->describe().c_str(), backend->name().c_str());
    MetricsLog log(o.log, !o.resume.empty());
    const int last = o.stop_at > 0 ? o.stop_at : o.steps;
    const size_t tokens_per_step = static_cast<size_t>(o.batch) * o.seq;
    while (trainer.steps_taken() < last) {
        StepResult r = trainer.step();
        nlohmann::json record = {{"step", r.step},
                                 {"tokens", r.step * tokens_per_step},
                                 {"loss", r.loss},
                                 {"lr", r.lr},
                                 {"grad_norm", r.grad_norm},
                                 {"ms", r.ms}};
        std::printf("step %5d/%d | loss %.4f | lr %.2e | norm %.3f | %.0f tok/s | %.1f ms\n",
                    r.step, o.steps, r.loss, r.lr, r.grad_norm,
                    tokens_per_step / (r.ms / 1000.0), r.ms);
        bool eval_now = r.step == last || (o.eval_every > 0 && r.step % o.eval_every == 0);
        if (eval_now) {
            double val = trainer.evaluate(o.val_batches);
            record["val_loss"] = val;
            record["val_ppl"] = std::exp(val);
            std::printf("step %5d/%d | val loss %.4f | val ppl %.3f\n", r.step, o.steps, val,
                        std::exp(val));
        }
        log.write(record);
        std::fflush(stdout);
        bool save_now = r.step == last || (o.save_every > 0 && r.step % o.save_every == 0);
        if (!o.save.empty() && save_now) trainer.save(o.save);
    }
}

}  // namespace

void add_train_command(CLI::App& app) {
    auto o = std::make_shared<TrainOptions>();
    CLI::App* cmd = app.add_subcommand("train", "train a GPT on one process");
    add_config_option(*cmd, o->config);
    cmd->add_option("--preset", o->preset, "model shape: tiny, gpt2-124m, paper-60m, "
                                           "paper-150m, paper-400m")
        ->capture_default_str();
    cmd->add_option("--data", o->data,
                    "text file to train on (default: the built-in fortunes corpus)");
    cmd->add_option("--val-fraction", o->val_fraction, "held-out tail for validation")
        ->capture_default_str();
    cmd->add_option("--steps", o->steps, "optimizer steps (the schedule's length)")
        ->capture_default_str();
    cmd->add_option("--stop-at", o->stop_at,
                    "stop after this step, keeping the schedule of --steps (to resume later)");
    cmd->add_option("--batch", o->batch, "sequences per step")->capture_default_str();
    cmd->add_option("--seq", o->seq, "tokens per sequence")->capture_default_str();
    cmd->add_option("--lr", o->lr, "peak learning rate")->capture_default_str();
    cmd->add_option("--warmup", o->warmup, "linear warm-up steps")->capture_default_str();
    cmd->add_option("--min-lr-fraction", o->min_lr_fraction, "cosine floor, fraction of --lr")
        ->capture_default_str();
    cmd->add_option("--weight-decay", o->weight_decay, "AdamW decoupled weight decay")
        ->capture_default_str();
    cmd->add_option("--grad-clip", o->grad_clip, "global gradient norm limit (0: off)")
        ->capture_default_str();
    cmd->add_option("--seed", o->seed, "seed for initialisation and batches")
        ->capture_default_str();
    cmd->add_option("--eval-every", o->eval_every, "validate every N steps (and at the end)")
        ->capture_default_str();
    cmd->add_option("--val-batches", o->val_batches, "validation batches per evaluation")
        ->capture_default_str();
    cmd->add_option("--log", o->log, "JSON-lines metrics file");
    cmd->add_option("--save", o->save, "checkpoint directory, written at the end");
    cmd->add_option("--save-every", o->save_every, "also save every N steps");
    cmd->add_option("--resume", o->resume, "checkpoint directory to continue from");
    cmd->add_option("--device", o->device, "cpu")->capture_default_str();
    cmd->callback([o, cmd] {
        apply_config_file(*cmd, o->config);
        run_train(*o);
    });
}

}  // namespace diloco
