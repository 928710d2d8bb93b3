// One island's inner training: batches from a TrainData, forward and backward on a Gpt,
// clipping, the schedule and AdamW; plus evaluation and its own save and resume.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "data/train_data.h"
#include "model/gpt.h"
#include "optim/adamw.h"
#include "optim/schedule.h"

namespace diloco {

struct InnerConfig {
    int batch = 16;
    int seq = 128;
    LrSchedule schedule;
    AdamWConfig adamw;
    float grad_clip = 1.0f;  // <= 0 turns clipping off
    uint64_t seed = 1337;
};

struct StepResult {
    int step;  // 1-based: the number of steps taken after this one
    double loss;
    float lr;
    double grad_norm;
    double ms;
};

class InnerTrainer {
public:
    InnerTrainer(Backend& backend, const GptConfig& model, const TrainData& data,
                 const InnerConfig& config);

    // GPT-2 initialisation from the config's seed.
    void init_params();
    StepResult step();
    // Mean loss over the first max_batches validation batches, weighted by rows.
    double evaluate(int max_batches);

    int steps_taken() const { return step_; }
    uint64_t data_position() const { return data_position_; }
    Gpt& model() { return *model_; }

    // Writes dir/model.safetensors, dir/config.json, dir/state.safetensors (atomically each).
    void save(const std::string& dir);
    // Restores weights, AdamW moments, step and data position; an Error when dir holds a
    // different model, a different seed, or files from two different saves.
    void resume(const std::string& dir);

private:
    Backend& backend_;
    const TrainData& data_;
    InnerConfig config_;
    std::unique_ptr<Gpt> model_;
    std::unique_ptr<AdamW> adamw_;
    int step_ = 0;
    uint64_t data_position_ = 0;
};

}  // namespace diloco
