// AdamW on the CPU: bias-corrected moments and decoupled weight decay, one pass over n elements.
// Elementwise, so any thread split gives the same bits.
#include "kernels/cpu/adamw.h"

#include <cmath>

namespace diloco::cpu {

template <typename Real>
void adamw_update(Real* params, const Real* grads, Real* m, Real* v, size_t n, Real lr,
                  Real beta1, Real beta2, Real eps, Real weight_decay, Real grad_scale, int step) {
    const Real correction1 = Real(1) - std::pow(beta1, Real(step));
    const Real correction2 = Real(1) - std::pow(beta2, Real(step));
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        const Real g = grads[i] * grad_scale;
        m[i] = beta1 * m[i] + (Real(1) - beta1) * g;
        v[i] = beta2 * v[i] + (Real(1) - beta2) * g * g;
        const Real mhat = m[i] / correction1, vhat = v[i] / correction2;
        params[i] -= lr * (mhat / (std::sqrt(vhat) + eps) + weight_decay * params[i]);
    }
}

template void adamw_update<float>(float*, const float*, float*, float*, size_t, float, float,
                                  float, float, float, float, int);
template void adamw_update<double>(double*, const double*, double*, double*, size_t, double,
                                   double, double, double, double, double, int);

}  // namespace diloco::cpu
