// AdamW over a model's flat parameter buffer: fp32 moments, updating the fp32 master weights
// when the backend stores parameters in a narrower type; decay on matrices and embeddings only.
#pragma once

#include <vector>

#include "kernels/backend.h"
#include "model/layout.h"

namespace diloco {

struct AdamWConfig {
    float beta1 = 0.9f;
    float beta2 = 0.95f;
    float eps = 1e-8f;
    float weight_decay = 0.1f;
    // Keys bf16 stochastic rounding: equal on ranks that hold the same parameters (an island;
    // every rank in ddp), different across runs and islands.
    uint64_t rounding_seed = 0;
};

class AdamW {
public:
    AdamW(Backend& backend, const ParamLayout& layout, const AdamWConfig& config);

    // One step at learning rate lr; gradients are multiplied by grad_scale (clipping) first.
    // master: the fp32 master weights (Gpt::master()), or null where params are fp32.
    void step(void* params, float* master, const void* grads, float lr, float grad_scale);

    int steps_taken() const { return step_; }
    // Host copies of the state, for checkpoints; set_state restores it exactly.
    std::vector<float> moment1();
    std::vector<float> moment2();
    void set_state(const std::vector<float>& m, const std::vector<float>& v, int steps_taken);

private:
    struct Range {
        size_t offset, size;
        bool decay;
    };
    Backend& backend_;
    AdamWConfig config_;
    std::vector<Range> ranges_;  // consecutive tensors with the same decay flag, merged
    size_t total_;
    DeviceBuffer m_, v_;
    int step_ = 0;
};

// Global L2 norm of a gradient buffer and the factor that clips it to max_norm (1 when
// max_norm <= 0 or the norm is already within it).
struct ClipResult {
    double norm;
    float scale;
};
ClipResult clip_by_global_norm(Backend& backend, const void* grads, size_t n, float max_norm);

}  // namespace diloco
