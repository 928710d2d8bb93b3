// Outer optimizers of DiLoCo over plain fp32 vectors: Nesterov momentum (the paper's), SGD with
// heavy-ball momentum, and Adam, each stepping the global parameters toward the islands' mean.
#pragma once

#include <string>
#include <vector>

namespace diloco {

struct OuterOptConfig {
    std::string name = "nesterov";  // nesterov | sgd | adam
    float lr = 0.7f;
    float momentum = 0.9f;          // Nesterov and SGD; Adam's beta1
    float beta2 = 0.999f;           // Adam
    float eps = 1e-8f;              // Adam
};

class OuterOptimizer {
public:
    OuterOptimizer(const OuterOptConfig& config, size_t n);

    // One outer step. The outer gradient is delta = global - mean (mean: the islands' weighted
    // mean parameters); global becomes mean + (delta - update), which is global - update in
    // exact arithmetic and exactly the mean when the update equals delta (lr 1, momentum 0).
    void step(std::vector<float>& global, const std::vector<float>& mean);

    int steps_taken() const { return steps_; }
    const std::vector<float>& moment1() const { return m_; }
    const std::vector<float>& moment2() const { return v_; }
    void set_state(const std::vector<float>& m, const std::vector<float>& v, int steps);

private:
    OuterOptConfig config_;
    std::vector<float> m_, v_;
    int steps_ = 0;
};

// Checks the name and ranges; an Error says which option is wrong.
void validate(const OuterOptConfig& config);

}  // namespace diloco
