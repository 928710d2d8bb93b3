// Outer optimizers of DiLoCo: PyTorch's SGD conventions (dampening 0) for Nesterov and heavy
// ball, and bias-corrected Adam; arithmetic in double, state in fp32.
#include "optim/outer.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "util/error.h"
#include "util/parallel.h"

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

namespace {

// What every value's update shares. beta2 and eps stay fp32 as the config holds them (and
// Adam's v update multiplies in fp32 first), so the arithmetic is the reference's to the bit.
struct Coefficients {
    double lr, mu;
    float beta2, eps;
    double bias1, bias2;  // Adam's bias corrections, 1 - beta^step
};

// The update of one value from its outer gradient delta, moving its state (m, v).
template <OuterOpt kind>
double update(float& m, float& v, double delta, const Coefficients& c) {
    if constexpr (kind == OuterOpt::adam) {
        m = static_cast<float>(c.mu * m + (1 - c.mu) * delta);
        v = static_cast<float>(c.beta2 * v + (1 - c.beta2) * delta * delta);
        return c.lr * (m / c.bias1) / (std::sqrt(v / c.bias2) + c.eps);
    }
    // The update uses the momentum before it is rounded to fp32, so lr 1 and momentum 0 make
    // it exactly delta.
    const double moment = c.mu * m + delta;
    m = static_cast<float>(moment);
    if constexpr (kind == OuterOpt::nesterov) return c.lr * (delta + c.mu * moment);
    return c.lr * moment;
}

// The update of one value as a function of its outer gradient (a type, not a lambda, since
// clang cannot capture the loop's locals in a lambda inside an OpenMP loop).
template <OuterOpt kind>
struct ValueStep {
    float& m;
    float& v;
    const Coefficients& c;
    double operator()(double delta) const { return update<kind>(m, v, delta, c); }
};

// body(kind) with the configured kind as a compile-time constant, so that each kind's loop is
// compiled on its own, the update inlined, and vectorised.
template <typename Body>
void with_kind(OuterOpt kind, Body body) {
    switch (kind) {
        case OuterOpt::nesterov:
            return body(std::integral_constant<OuterOpt, OuterOpt::nesterov>{});
        case OuterOpt::sgd: return body(std::integral_constant<OuterOpt, OuterOpt::sgd>{});
        case OuterOpt::adam: return body(std::integral_constant<OuterOpt, OuterOpt::adam>{});
    }
}

}  // namespace

OuterOptimizer::Step OuterOptimizer::begin_step(OuterRange r) {
    require(r.begin <= r.end && r.end <= m_.size() && r.step >= 1, "outer step: bad range");
    const double mu = config_.momentum;
    const bool adam = config_.kind == OuterOpt::adam;
    // Adam's v is empty otherwise; the update never touches it then, but needs a place.
    float* v = adam ? v_.data() + r.begin : &unused_v_;
    return {m_.data() + r.begin, v, adam ? size_t(1) : size_t(0), r.end - r.begin,
            adam ? 1 - std::pow(mu, r.step) : 1.0,
            adam ? 1 - std::pow(double(config_.beta2), r.step) : 1.0};
}

// Sets global[j] = new_value(j, step) over the range, where step(delta) is the update of the
// configured kind for value j's outer gradient delta (moving its state: a ValueStep). Each value's update
// depends on its own state alone, so the threads give the same bits as one.
template <typename NewValue>
void OuterOptimizer::step_each(OuterRange r, float* global, NewValue new_value) {
    const Step s = begin_step(r);
    const Coefficients c{config_.lr, config_.momentum, config_.beta2, config_.eps, s.bias1,
                         s.bias2};
    with_kind(config_.kind, [&](auto kind) {
#pragma omp parallel for schedule(static) if (s.n >= kParallelMin)
        for (size_t j = 0; j < s.n; j++)
            global[j] = static_cast<float>(
                new_value(j, ValueStep<kind()>{s.m[j], s.v[j * s.v_stride], c}));
    });
}

void OuterOptimizer::step_to_mean(float* global, const float* mean, OuterRange r) {
    step_each(r, global, [&](size_t j, auto step) {
        const double delta = double(global[j]) - double(mean[j]);
        return double(mean[j]) + (delta - step(delta));
    });
}

void OuterOptimizer::step_by_delta(float* global, const float* delta, OuterRange r) {
    step_each(r, global,
              [&](size_t j, auto step) { return double(global[j]) - step(delta[j]); });
}

void OuterOptimizer::step_share(float* global, float* mean, OuterRange r) {
    step_to_mean(global, mean, r);
    std::copy(global, global + (r.end - r.begin), mean);
}

std::vector<std::vector<float>*> OuterOptimizer::state() {
    if (v_.empty()) return {&m_};
    return {&m_, &v_};
}

void OuterOptimizer::set_state(const std::vector<float>& m, const std::vector<float>& v) {
    require(m.size() == m_.size() && v.size() == v_.size(),
            "outer optimizer state has the wrong size");
    m_ = m;
    v_ = v;
}

}  // namespace diloco
