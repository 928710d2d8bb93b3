// The GPT-2 model: parameters and gradients as two flat buffers on a Backend (and fp32 master
// weights where storage is narrower), activations for a maximum batch, forward and backward.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/backend.h"
#include "model/config.h"
#include "model/layout.h"

namespace diloco {

// What one forward pass computed, for comparing with another implementation: the logits over
// the real vocabulary [B, T, vocab] and each position's next-token loss [B, T].
struct ForwardOutputs {
    std::vector<float> logits, losses;
};

// GPT-2 initialisation: N(0, 0.02) for matrices and embeddings, residual projections scaled by
// 1/sqrt(2 * layers), zero biases, unit LayerNorm weights, zero padded vocabulary rows.
std::vector<float> init_gpt2_params(const GptConfig& config, const ParamLayout& layout,
                                    uint64_t seed);

class Gpt {
public:
    // Activations are sized for batches up to max_batch x max_tokens (max_tokens <= max_seq).
    Gpt(Backend& backend, const GptConfig& config, int max_batch, int max_tokens);

    const GptConfig& config() const { return config_; }
    const ParamLayout& layout() const { return layout_; }
    Backend& backend() { return backend_; }
    size_t num_params() const { return layout_.total; }
    void* params() { return params_.get(); }
    void* grads() { return grads_.get(); }
    // The fp32 master weights the optimizer updates; null where storage is fp32 (params are
    // their own master).
    float* master() { return master_.f32(); }

    // Sets the master weights (exactly) and the params (rounded to storage); get_params returns
    // the master weights, so outer steps and checkpoints never see storage rounding.
    void set_params(const std::vector<float>& host);
    std::vector<float> get_params();
    // The same for values [begin, end) of the flat buffer, to or from host memory that the
    // caller keeps (the outer step moves one fragment at a time, without fresh buffers).
    void write_params(const float* host, size_t begin, size_t end);
    void read_params(float* host, size_t begin, size_t end);
    std::vector<float> get_grads();
    void zero_grads();
    // Gradient accumulation over micro-batches. With fp32 storage they add up in grads() itself
    // and both calls do nothing. With narrower storage fold_grads() moves each micro-batch's
    // gradients into an fp32 sum (bf16 would swallow the later, smaller additions) and
    // store_grads() rounds the sum into grads() once, at the end of the step.
    void fold_grads();
    void store_grads();

    // Mean next-token loss over B x T positions, forward only.
    double evaluate(const int32_t* tokens, const int32_t* targets, int B, int T);
    // Forward and backward; gradients accumulate scaled by loss_scale. Returns the mean loss.
    double forward_backward(const int32_t* tokens, const int32_t* targets, int B, int T,
                            float loss_scale = 1.0f);
    // Forward only, keeping every position's logits and loss.
    ForwardOutputs forward_outputs(const int32_t* tokens, const int32_t* targets, int B, int T);
    // Logits over the real vocabulary for the last of T tokens (one sequence).
    std::vector<float> last_logits(const int32_t* tokens, int T);

private:
    struct Layer {
        DeviceBuffer res1, ln1, qkv, atty, att_stats, res2, ln2, fch_pre, fch_gelu, fcproj;
        DeviceBuffer ln1_mean, ln1_rstd, ln2_mean, ln2_rstd;
    };
    void check_shape(int B, int T) const;
    void upload_batch(const int32_t* tokens, const int32_t* targets, int B, int T);
    void forward(int B, int T);
    double loss(int B, int T, float grad_scale);
    void backward(int B, int T);
    void* param(size_t offset) { return element(backend_, params_.get(), offset); }
    void* grad(size_t offset) { return element(backend_, grads_.get(), offset); }

    Backend& backend_;
    GptConfig config_;
    ParamLayout layout_;
    int max_batch_, max_tokens_;
    DeviceBuffer params_, grads_, master_;
    DeviceBuffer grad_sum_;  // fp32, allocated by the first fold_grads() on narrow storage
    DeviceBuffer tokens_, targets_;
    std::vector<Layer> layers_;
    DeviceBuffer res_final_, lnf_, lnf_mean_, lnf_rstd_, logits_, losses_;
    // Backward scratch, shared by all layers.
    DeviceBuffer dres_, dln_, datty_, dqkv_, dfch_;
};

}  // namespace diloco
