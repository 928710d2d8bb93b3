// AdamW on the CPU: bias-corrected moments and decoupled weight decay, one pass over n elements.
// Elementwise, so any thread split gives the same bits.
#include "kernels/cpu/adamw.h"

#include <algorithm>
#include <cmath>

#include "kernels/cpu/simd.h"

namespace diloco::cpu {

namespace {

// Elements per parallel chunk: a few pages, many chunks per thread at the model's sizes.
constexpr size_t kChunk = 4096;

template <typename Real>
struct Hyper {
    Real lr, beta1, beta2, eps, weight_decay, grad_scale, correction1, correction2;
};

template <typename Real>
DILOCO_CPU_CLONES void adamw_chunk(Real* params, const Real* grads, Real* m, Real* v, size_t n,
                                   const Hyper<Real>& h) {
    for (size_t i = 0; i < n; i++) {
        const Real g = grads[i] * h.grad_scale;
        m[i] = h.beta1 * m[i] + (Real(1) - h.beta1) * g;
        v[i] = h.beta2 * v[i] + (Real(1) - h.beta2) * g * g;
        const Real mhat = m[i] / h.correction1, vhat = v[i] / h.correction2;
        params[i] -= h.lr * (mhat / (std::sqrt(vhat) + h.eps) + h.weight_decay * params[i]);
    }
}

}  // namespace

template <typename Real>
void adamw_update(Real* params, const Real* grads, Real* m, Real* v, size_t n, Real lr,
                  Real beta1, Real beta2, Real eps, Real weight_decay, Real grad_scale, int step) {
    const Real correction1 = Real(1) - std::pow(beta1, Real(step));
    const Real correction2 = Real(1) - std::pow(beta2, Real(step));
    const Hyper<Real> h{lr, beta1, beta2, eps, weight_decay, grad_scale, correction1, correction2};
#pragma omp parallel for schedule(static)
    for (size_t c = 0; c < n; c += kChunk)
        adamw_chunk(params + c, grads + c, m + c, v + c, std::min(kChunk, n - c), h);
}

template void adamw_update<float>(float*, const float*, float*, float*, size_t, float, float,
                                  float, float, float, float, int);
template void adamw_update<double>(double*, const double*, double*, double*, size_t, double,
                                   double, double, double, double, double, int);

}  // namespace diloco::cpu
