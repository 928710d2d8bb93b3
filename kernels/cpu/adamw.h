// AdamW on the CPU: one step of bias-corrected Adam with decoupled weight decay, elementwise.
// The CPU backend keeps parameters in fp32, so they are their own master copy.
#pragma once

#include <cstddef>

namespace diloco::cpu {

// g = grads * grad_scale; m = beta1 m + (1 - beta1) g; v = beta2 v + (1 - beta2) g^2;
// params -= lr * (mhat / (sqrt(vhat) + eps) + weight_decay * params), with mhat, vhat the moments
// divided by 1 - beta^step. step counts from 1.
template <typename Real>
void adamw_update(Real* params, const Real* grads, Real* m, Real* v, size_t n, Real lr,
                  Real beta1, Real beta2, Real eps, Real weight_decay, Real grad_scale, int step);

}  // namespace diloco::cpu
