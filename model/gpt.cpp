// The GPT-2 forward and backward pass, written once against the Backend; the op sequence
// follows the pre-LayerNorm block: x + attn(ln1(x)), then + mlp(ln2(.)), then ln_f and tied logits.
#include "model/gpt.h"

#include <algorithm>
#include <cmath>

#include "util/error.h"
#include "util/rng.h"

namespace diloco {

std::vector<float> init_gpt2_params(const GptConfig& config, const ParamLayout& layout,
                                    uint64_t seed) {
    std::vector<float> p(layout.total, 0.0f);
    const double residual_std = 0.02 / std::sqrt(2.0 * config.layers);
    for (size_t i = 0; i < layout.tensors.size(); i++) {
        const ParamTensor& t = layout.tensors[i];
        float* x = p.data() + t.offset;
        if (t.shape.size() == 1) {  // LayerNorm weights are 1, every bias 0
            bool ln_weight = t.name.find("ln_") != std::string::npos &&
                             t.name.ends_with(".weight");
            std::fill(x, x + t.size, ln_weight ? 1.0f : 0.0f);
            continue;
        }
        double std = t.residual_projection ? residual_std : 0.02;
        size_t n = t.size;
        if (t.offset == layout.wte) n = static_cast<size_t>(config.vocab) * config.channels;
        Rng rng(seed, i);  // one stream per tensor: adding a layer does not reshuffle the others
        for (size_t j = 0; j < n; j++) x[j] = static_cast<float>(std * rng.normal());
    }
    return p;
}

Gpt::Gpt(Backend& backend, const GptConfig& config, int max_batch, int max_tokens)
    : backend_(backend), config_(config), layout_(build_layout(config)),
      max_batch_(max_batch), max_tokens_(max_tokens) {
    validate(config);
    require(max_batch > 0, "impossible config: batch " + std::to_string(max_batch));
    require(max_tokens > 0 && max_tokens <= config.max_seq,
            "impossible config: sequence length " + std::to_string(max_tokens) +
                " exceeds the position table (" + std::to_string(config.max_seq) + ")");
    const size_t sb = backend.storage_bytes();
    const size_t N = static_cast<size_t>(max_batch) * max_tokens, C = config.channels;
    auto storage = [&](size_t n) { return DeviceBuffer(backend, n * sb); };
    auto floats = [&](size_t n) { return DeviceBuffer(backend, n * sizeof(float)); };
    params_ = storage(layout_.total);
    grads_ = storage(layout_.total);
    if (sb != sizeof(float)) master_ = floats(layout_.total);
    tokens_ = DeviceBuffer(backend, N * sizeof(int32_t));
    targets_ = DeviceBuffer(backend, N * sizeof(int32_t));
    size_t stats = backend.attention_stats_floats(max_batch, max_tokens, config.heads);
    for (int l = 0; l < config.layers; l++) {
        Layer L;
        L.res1 = storage(N * C), L.ln1 = storage(N * C), L.qkv = storage(N * 3 * C);
        L.atty = storage(N * C), L.att_stats = floats(stats), L.res2 = storage(N * C);
        L.ln2 = storage(N * C), L.fch_pre = storage(N * 4 * C), L.fch_gelu = storage(N * 4 * C);
        L.fcproj = storage(N * C);
        L.ln1_mean = floats(N), L.ln1_rstd = floats(N), L.ln2_mean = floats(N);
        L.ln2_rstd = floats(N);
        layers_.push_back(std::move(L));
    }
    res_final_ = storage(N * C), lnf_ = storage(N * C);
    lnf_mean_ = floats(N), lnf_rstd_ = floats(N);
    logits_ = storage(N * config.padded_vocab), losses_ = floats(N);
    dres_ = storage(N * C), dln_ = storage(N * C), datty_ = storage(N * C);
    dqkv_ = storage(N * 3 * C), dfch_ = storage(N * 4 * C);
}

void Gpt::set_params(const std::vector<float>& host) {
    require(host.size() == layout_.total, "parameter vector has " + std::to_string(host.size()) +
                                              " values, model needs " +
                                              std::to_string(layout_.total));
    write_params(host.data(), 0, host.size());
}

std::vector<float> Gpt::get_params() {
    std::vector<float> host(layout_.total);
    read_params(host.data(), 0, host.size());
    return host;
}

// With a master copy the exact values go up once and the device rounds them into storage,
// rather than the host converting every value on one thread.
void Gpt::write_params(const float* host, size_t begin, size_t end) {
    require(begin <= end && end <= layout_.total, "parameter range outside the model");
    if (master()) {
        backend_.upload_bytes(master() + begin, host, (end - begin) * sizeof(float));
        backend_.store_f32(param(begin), master() + begin, end - begin);
    } else {
        backend_.upload(param(begin), host, end - begin);
    }
}

void Gpt::read_params(float* host, size_t begin, size_t end) {
    require(begin <= end && end <= layout_.total, "parameter range outside the model");
    if (master())
        backend_.download_bytes(host, master() + begin, (end - begin) * sizeof(float));
    else
        backend_.download(host, param(begin), end - begin);
}

std::vector<float> Gpt::get_grads() {
    std::vector<float> host(layout_.total);
    backend_.download(host.data(), grads_.get(), host.size());
    return host;
}

void Gpt::zero_grads() { backend_.zero(grads_.get(), grads_.bytes()); }

void Gpt::fold_grads() {
    if (!master()) return;
    if (!grad_sum_.get()) grad_sum_ = DeviceBuffer(backend_, layout_.total * sizeof(float));
    backend_.accumulate_f32(grad_sum_.f32(), grads_.get(), layout_.total);
    zero_grads();
}

void Gpt::store_grads() {
    if (!grad_sum_.get()) return;
    backend_.store_f32(grads_.get(), grad_sum_.f32(), layout_.total);
    backend_.zero(grad_sum_.get(), grad_sum_.bytes());
}

void Gpt::check_shape(int B, int T) const {
    require(B > 0 && B <= max_batch_ && T > 0 && T <= max_tokens_, [&] {  // every micro-batch
        return "batch " + std::to_string(B) + "x" + std::to_string(T) + " exceeds the model's " +
               std::to_string(max_batch_) + "x" + std::to_string(max_tokens_);
    });
}

void Gpt::upload_batch(const int32_t* tokens, const int32_t* targets, int B, int T) {
    check_shape(B, T);
    const size_t n = static_cast<size_t>(B) * T;
    const int32_t* bad = std::find_if(tokens, tokens + n, [&](int32_t id) {
        return id < 0 || id >= config_.vocab;
    });
    if (bad != tokens + n)
        throw Error("token id " + std::to_string(*bad) + " outside the vocabulary of " +
                    std::to_string(config_.vocab));
    backend_.upload_bytes(tokens_.get(), tokens, n * sizeof(int32_t));
    if (targets) backend_.upload_bytes(targets_.get(), targets, n * sizeof(int32_t));
}

void Gpt::forward(int B, int T) {
    const int N = B * T, C = config_.channels, NH = config_.heads;
    backend_.embedding_forward(layers_[0].res1.get(), tokens_.i32(), param(layout_.wte),
                               param(layout_.wpe), B, T, C);
    for (int l = 0; l < config_.layers; l++) {
        Layer& L = layers_[l];
        const BlockOffsets& o = layout_.blocks[l];
        if (l == 0) {
            backend_.layernorm_forward(L.ln1.get(), L.ln1_mean.f32(), L.ln1_rstd.f32(),
                                       L.res1.get(), param(o.ln1_w), param(o.ln1_b), N, C);
        } else {
            Layer& P = layers_[l - 1];
            backend_.residual_layernorm_forward(L.res1.get(), L.ln1.get(), L.ln1_mean.f32(),
                                                L.ln1_rstd.f32(), P.res2.get(), P.fcproj.get(),
                                                param(o.ln1_w), param(o.ln1_b), N, C);
        }
        backend_.matmul_forward(L.qkv.get(), nullptr, L.ln1.get(), param(o.qkv_w),
                                param(o.qkv_b), N, C, 3 * C);
        backend_.attention_forward(L.atty.get(), L.att_stats.f32(), L.qkv.get(), B, T, C, NH);
        // dln_ is free during the forward pass: it holds the attention projection briefly.
        backend_.matmul_forward(dln_.get(), nullptr, L.atty.get(), param(o.attproj_w),
                                param(o.attproj_b), N, C, C);
        backend_.residual_layernorm_forward(L.res2.get(), L.ln2.get(), L.ln2_mean.f32(),
                                            L.ln2_rstd.f32(), L.res1.get(), dln_.get(),
                                            param(o.ln2_w), param(o.ln2_b), N, C);
        backend_.matmul_forward(L.fch_gelu.get(), L.fch_pre.get(), L.ln2.get(), param(o.fc_w),
                                param(o.fc_b), N, C, 4 * C);
        backend_.matmul_forward(L.fcproj.get(), nullptr, L.fch_gelu.get(), param(o.fcproj_w),
                                param(o.fcproj_b), N, 4 * C, C);
    }
    Layer& last = layers_.back();
    backend_.residual_layernorm_forward(res_final_.get(), lnf_.get(), lnf_mean_.f32(),
                                        lnf_rstd_.f32(), last.res2.get(), last.fcproj.get(),
                                        param(layout_.lnf_w), param(layout_.lnf_b), N, C);
    backend_.matmul_forward(logits_.get(), nullptr, lnf_.get(), param(layout_.wte), nullptr, N,
                            C, config_.padded_vocab);
}

double Gpt::loss(int B, int T, float grad_scale) {
    const int N = B * T;
    double sum = backend_.softmax_cross_entropy(logits_.get(), losses_.f32(), targets_.i32(), N,
                                                config_.vocab, config_.padded_vocab, grad_scale);
    return sum / N;
}

void Gpt::backward(int B, int T) {
    const int N = B * T, C = config_.channels, NH = config_.heads;
    // logits_ now holds dlogits (written in place by the fused cross-entropy).
    backend_.matmul_backward(dln_.get(), grad(layout_.wte), nullptr, logits_.get(), lnf_.get(),
                             param(layout_.wte), nullptr, N, C, config_.padded_vocab);
    backend_.zero(dres_.get(), dres_.bytes());
    backend_.layernorm_backward(dres_.get(), grad(layout_.lnf_w), grad(layout_.lnf_b),
                                dln_.get(), res_final_.get(), param(layout_.lnf_w),
                                lnf_mean_.f32(), lnf_rstd_.f32(), N, C);
    for (int l = config_.layers - 1; l >= 0; l--) {
        Layer& L = layers_[l];
        const BlockOffsets& o = layout_.blocks[l];
        // dres_ is the gradient of this block's output: it flows to fcproj and to res2 alike.
        backend_.matmul_backward(dfch_.get(), grad(o.fcproj_w), grad(o.fcproj_b), dres_.get(),
                                 L.fch_gelu.get(), param(o.fcproj_w), nullptr, N, 4 * C, C);
        backend_.matmul_backward(dln_.get(), grad(o.fc_w), grad(o.fc_b), dfch_.get(),
                                 L.ln2.get(), param(o.fc_w), L.fch_pre.get(), N, C, 4 * C);
        backend_.layernorm_backward(dres_.get(), grad(o.ln2_w), grad(o.ln2_b), dln_.get(),
                                    L.res2.get(), param(o.ln2_w), L.ln2_mean.f32(),
                                    L.ln2_rstd.f32(), N, C);
        backend_.matmul_backward(datty_.get(), grad(o.attproj_w), grad(o.attproj_b),
                                 dres_.get(), L.atty.get(), param(o.attproj_w), nullptr, N, C,
                                 C);
        backend_.attention_backward(dqkv_.get(), datty_.get(), L.qkv.get(), L.atty.get(),
                                    L.att_stats.f32(), B, T, C, NH);
        backend_.matmul_backward(dln_.get(), grad(o.qkv_w), grad(o.qkv_b), dqkv_.get(),
                                 L.ln1.get(), param(o.qkv_w), nullptr, N, C, 3 * C);
        backend_.layernorm_backward(dres_.get(), grad(o.ln1_w), grad(o.ln1_b), dln_.get(),
                                    L.res1.get(), param(o.ln1_w), L.ln1_mean.f32(),
                                    L.ln1_rstd.f32(), N, C);
    }
    backend_.embedding_backward(grad(layout_.wte), grad(layout_.wpe), dres_.get(),
                                tokens_.i32(), B, T, C);
}

double Gpt::evaluate(const int32_t* tokens, const int32_t* targets, int B, int T) {
    upload_batch(tokens, targets, B, T);
    forward(B, T);
    return loss(B, T, 0.0f);
}

double Gpt::forward_backward(const int32_t* tokens, const int32_t* targets, int B, int T,
                             float loss_scale) {
    upload_batch(tokens, targets, B, T);
    forward(B, T);
    double mean = loss(B, T, loss_scale / static_cast<float>(B * T));
    backward(B, T);
    return mean;
}

ForwardOutputs Gpt::forward_outputs(const int32_t* tokens, const int32_t* targets, int B,
                                    int T) {
    upload_batch(tokens, targets, B, T);
    forward(B, T);
    const size_t N = static_cast<size_t>(B) * T, V = config_.vocab;
    ForwardOutputs out{std::vector<float>(N * V), std::vector<float>(N)};
    for (size_t n = 0; n < N; n++)  // before the loss, which overwrites the logits in place
        backend_.download(out.logits.data() + n * V,
                          element(backend_, logits_.get(), n * config_.padded_vocab), V);
    loss(B, T, 0.0f);
    backend_.download_bytes(out.losses.data(), losses_.get(), N * sizeof(float));
    return out;
}

std::vector<float> Gpt::last_logits(const int32_t* tokens, int T) {
    upload_batch(tokens, nullptr, 1, T);
    forward(1, T);
    std::vector<float> logits(config_.vocab);
    backend_.download(logits.data(),
                      element(backend_, logits_.get(), static_cast<size_t>(T - 1) *
                                                           config_.padded_vocab),
                      logits.size());
    return logits;
}

}  // namespace diloco
