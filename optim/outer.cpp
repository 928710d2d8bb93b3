// Outer optimizers of DiLoCo: PyTorch's SGD conventions (dampening 0) for Nesterov and heavy
// ball, and bias-corrected Adam; arithmetic in double, state in fp32.
#include "optim/outer.h"

#include <cmath>

#include "util/error.h"

namespace diloco {

const char* outer_opt_name(OuterOpt opt) {
    switch (opt) {
        case OuterOpt::nesterov: return "nesterov";
        case OuterOpt::sgd: return "sgd";
        case OuterOpt::adam: return "adam";
    }
    return "?";
}

void validate(const OuterOptConfig& c) {
    require(c.lr > 0 && std::isfinite(c.lr), "--outer-lr must be positive and finite");
    require(c.momentum >= 0 && c.momentum < 1, "--outer-momentum must be in [0, 1)");
    require(c.beta2 >= 0 && c.beta2 < 1, "--outer-beta2 must be in [0, 1)");
    require(c.eps > 0, "--outer-eps must be positive");
}

OuterOptimizer::OuterOptimizer(const OuterOptConfig& config, size_t n)
    : config_(config), m_(n, 0.0f), v_(config.kind == OuterOpt::adam ? n : 0, 0.0f) {
    validate(config);
}

double OuterOptimizer::update(size_t i, double delta, int step) {
    const double lr = config_.lr, mu = config_.momentum;
    if (config_.kind == OuterOpt::adam) {
        const double bias1 = 1 - std::pow(mu, step), bias2 = 1 - std::pow(config_.beta2, step);
        m_[i] = static_cast<float>(mu * m_[i] + (1 - mu) * delta);
        v_[i] = static_cast<float>(config_.beta2 * v_[i] + (1 - config_.beta2) * delta * delta);
        return lr * (m_[i] / bias1) / (std::sqrt(v_[i] / bias2) + config_.eps);
    }
    // The update uses the momentum before it is rounded to fp32, so lr 1 and momentum 0 make
    // it exactly delta.
    const double m = mu * m_[i] + delta;
    m_[i] = static_cast<float>(m);
    return config_.kind == OuterOpt::nesterov ? lr * (delta + mu * m) : lr * m;
}

void OuterOptimizer::step_to_mean(float* global, const float* mean, OuterRange r) {
    require(r.begin <= r.end && r.end <= m_.size() && r.step >= 1, "outer step: bad range");
    for (size_t j = 0; j < r.end - r.begin; j++) {
        const double delta = double(global[j]) - double(mean[j]);
        global[j] = static_cast<float>(double(mean[j]) + (delta - update(r.begin + j, delta, r.step)));
    }
}

void OuterOptimizer::step_by_delta(float* global, const float* delta, OuterRange r) {
    require(r.begin <= r.end && r.end <= m_.size() && r.step >= 1, "outer step: bad range");
    for (size_t j = 0; j < r.end - r.begin; j++)
        global[j] = static_cast<float>(double(global[j]) - update(r.begin + j, delta[j], r.step));
}

void OuterOptimizer::set_state(const std::vector<float>& m, const std::vector<float>& v) {
    require(m.size() == m_.size() && v.size() == v_.size(),
            "outer optimizer state has the wrong size");
    m_ = m;
    v_ = v;
}

}  // namespace diloco
