// Outer optimizers of DiLoCo: PyTorch's SGD conventions (dampening 0) for Nesterov and heavy
// ball, and bias-corrected Adam; arithmetic in double, state in fp32.
#include "optim/outer.h"

#include <cmath>

#include "util/error.h"

namespace diloco {

void validate(const OuterOptConfig& c) {
    require(c.name == "nesterov" || c.name == "sgd" || c.name == "adam",
            "--outer-opt '" + c.name + "': expected nesterov, sgd or adam");
    require(c.lr > 0 && std::isfinite(c.lr), "--outer-lr must be positive and finite");
    require(c.momentum >= 0 && c.momentum < 1, "--outer-momentum must be in [0, 1)");
    require(c.beta2 >= 0 && c.beta2 < 1, "--outer-beta2 must be in [0, 1)");
    require(c.eps > 0, "--outer-eps must be positive");
}

OuterOptimizer::OuterOptimizer(const OuterOptConfig& config, size_t n)
    : config_(config), m_(n, 0.0f), v_(config.name == "adam" ? n : 0, 0.0f) {
    validate(config);
}

void OuterOptimizer::step(std::vector<float>& global, const std::vector<float>& mean) {
    require(global.size() == mean.size() && global.size() == m_.size(),
            "outer step: vector sizes differ");
    steps_++;
    const double lr = config_.lr, mu = config_.momentum;
    const double bias1 = 1 - std::pow(mu, steps_), bias2 = 1 - std::pow(config_.beta2, steps_);
    for (size_t i = 0; i < global.size(); i++) {
        const double delta = double(global[i]) - double(mean[i]);
        double update;
        if (config_.name == "adam") {
            m_[i] = static_cast<float>(mu * m_[i] + (1 - mu) * delta);
            v_[i] = static_cast<float>(config_.beta2 * v_[i] + (1 - config_.beta2) * delta * delta);
            update = lr * (m_[i] / bias1) / (std::sqrt(v_[i] / bias2) + config_.eps);
        } else {
            // The update uses the momentum before it is rounded to fp32, so lr 1 and momentum 0
            // make it exactly delta.
            const double m = mu * m_[i] + delta;
            m_[i] = static_cast<float>(m);
            update = config_.name == "nesterov" ? lr * (delta + mu * m) : lr * m;
        }
        global[i] = static_cast<float>(double(mean[i]) + (delta - update));
    }
}

void OuterOptimizer::set_state(const std::vector<float>& m, const std::vector<float>& v,
                               int steps) {
    require(m.size() == m_.size() && v.size() == v_.size(),
            "outer optimizer state has the wrong size");
    m_ = m;
    v_ = v;
    steps_ = steps;
}

}  // namespace diloco
