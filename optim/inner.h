// One island's inner training: batches from a TrainData, forward and backward on a Gpt,
// clipping, the schedule and AdamW; plus evaluation and its own save and resume.
#pragma once

#include <climits>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "data/train_data.h"
#include "model/gpt.h"
#include "optim/adamw.h"
#include "optim/schedule.h"

namespace diloco {

struct InnerConfig {
    int batch = 16;       // rows per micro-batch (what the activations are sized for)
    int grad_accum = 1;   // micro-batches per step: a step takes batch x grad_accum rows
    int seq = 128;
    LrSchedule schedule;
    AdamWConfig adamw;
    float grad_clip = 1.0f;  // <= 0 turns clipping off
    uint64_t seed = 1337;    // initialisation
    uint64_t data_seed = 1337;  // the batch stream (one per island)
    int first_row = 0;          // this rank's first row of each batch (data parallel)
    int val_batch = 0;          // rows per validation batch, alike on every rank (0: batch)
};

// Averages a gradient buffer (n storage values) over the ranks that share a step.
using GradReducer = std::function<void(void* grads, size_t n)>;

struct StepResult {
    int step;  // 1-based: the number of steps taken after this one
    double loss;
    float lr;
    double grad_norm;
    double ms;
};

// Sum of row losses and the row count of `model` over batches part, part + parts, ... (a share
// of a validation set for one of `parts` ranks; all of it for part 0 of 1), evaluated at most
// max_rows rows at a time (the rows the model's activations hold).
std::pair<double, size_t> validation_share(Gpt& model, const std::vector<TokenBatch>& batches,
                                           int part, int parts, int max_rows = INT_MAX);

class InnerTrainer {
public:
    InnerTrainer(Backend& backend, const GptConfig& model, const TrainData& data,
                 const InnerConfig& config);

    // GPT-2 initialisation from the config's seed.
    void init_params();
    // Called on the gradients of every step before clipping (data parallel averaging).
    void set_grad_reducer(GradReducer reducer) { reduce_grads_ = std::move(reducer); }
    StepResult step();
    // Sum of row losses and the row count over batches part, part + parts, ... (a share of
    // the validation set for one of `parts` ranks).
    std::pair<double, size_t> evaluate_share(int max_batches, int part, int parts);

    const InnerConfig& config() const { return config_; }
    int steps_taken() const { return step_; }
    uint64_t data_position() const { return data_position_; }
    Gpt& model() { return *model_; }

    // Loads weights from a checkpoint directory, checking that it holds this model; returns
    // the step it was saved at, and the file's metadata through `metadata` when given.
    int load_weights(const std::string& dir,
                     std::map<std::string, std::string>* metadata = nullptr);
    // The training state: AdamW moments, step, data position (atomically written).
    void save_state(const std::string& file);
    // The same as a function that writes it later, from a copy taken now (a background save).
    std::function<void(const std::string& file)> state_writer();
    void load_state(const std::string& file);
    void set_step(int step) { step_ = step; }
    void set_data_position(uint64_t position) { data_position_ = position; }

private:
    Backend& backend_;
    const TrainData& data_;
    InnerConfig config_;
    std::unique_ptr<Gpt> model_;
    std::unique_ptr<AdamW> adamw_;
    int step_ = 0;
    uint64_t data_position_ = 0;
    GradReducer reduce_grads_;
};

}  // namespace diloco
