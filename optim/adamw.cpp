// AdamW over a model's flat parameter buffer, merged into runs of equal weight decay so a step
// is a handful of backend calls; and clipping by the global gradient norm.
#include "optim/adamw.h"

#include <cmath>

#include "util/error.h"

namespace diloco {

AdamW::AdamW(Backend& backend, const ParamLayout& layout, const AdamWConfig& config)
    : backend_(backend), config_(config), total_(layout.total),
      m_(backend, layout.total * sizeof(float)), v_(backend, layout.total * sizeof(float)) {
    for (const ParamTensor& t : layout.tensors) {
        if (!ranges_.empty() && ranges_.back().decay == t.decay &&
            ranges_.back().offset + ranges_.back().size == t.offset) {
            ranges_.back().size += t.size;
        } else {
            ranges_.push_back({t.offset, t.size, t.decay});
        }
    }
}

void AdamW::step(void* params, float* master, const void* grads, float lr, float grad_scale) {
    step_++;
    for (const Range& r : ranges_) {
        backend_.adamw_update(element(backend_, params, r.offset),
                              master ? master + r.offset : nullptr,
                              element(backend_, const_cast<void*>(grads), r.offset),
                              m_.f32() + r.offset, v_.f32() + r.offset, r.size, lr,
                              config_.beta1, config_.beta2, config_.eps,
                              r.decay ? config_.weight_decay : 0.0f, grad_scale, step_, r.offset,
                              config_.rounding_seed);
    }
}

std::vector<float> AdamW::moment1() {
    std::vector<float> host(total_);
    backend_.download_bytes(host.data(), m_.get(), total_ * sizeof(float));
    return host;
}

std::vector<float> AdamW::moment2() {
    std::vector<float> host(total_);
    backend_.download_bytes(host.data(), v_.get(), total_ * sizeof(float));
    return host;
}

void AdamW::set_state(const std::vector<float>& m, const std::vector<float>& v,
                      int steps_taken) {
    require(m.size() == total_ && v.size() == total_,
            "AdamW state has " + std::to_string(m.size()) + " values, expected " +
                std::to_string(total_));
    backend_.upload_bytes(m_.get(), m.data(), total_ * sizeof(float));
    backend_.upload_bytes(v_.get(), v.data(), total_ * sizeof(float));
    step_ = steps_taken;
}

ClipResult clip_by_global_norm(Backend& backend, const void* grads, size_t n, float max_norm) {
    double norm = std::sqrt(backend.sum_squares(grads, n));
    float scale = 1.0f;
    if (max_norm > 0 && norm > max_norm) scale = static_cast<float>(max_norm / norm);
    return {norm, scale};
}

}  // namespace diloco
