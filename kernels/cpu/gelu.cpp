// GELU on the CPU (tanh approximation) and its exact derivative, elementwise.
// With u = s (x + a x^3): gelu = x (1 + tanh u) / 2, gelu' = (1 + tanh u) / 2 + x sech^2(u) u' / 2.
#include "kernels/cpu/gelu.h"

#include <cmath>

namespace diloco::cpu {

namespace {
constexpr double kSqrt2OverPi = 0.79788456080286535588;
constexpr double kCubic = 0.044715;
}  // namespace

template <typename Real>
void gelu_forward(Real* out, const Real* inp, size_t n) {
    const Real s = Real(kSqrt2OverPi), a = Real(kCubic);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        const Real x = inp[i];
        out[i] = Real(0.5) * x * (Real(1) + std::tanh(s * (x + a * x * x * x)));
    }
}

template <typename Real>
void gelu_backward(Real* dout, const Real* inp, size_t n) {
    const Real s = Real(kSqrt2OverPi), a = Real(kCubic);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        const Real x = inp[i];
        const Real th = std::tanh(s * (x + a * x * x * x));
        const Real du = s * (Real(1) + Real(3) * a * x * x);
        dout[i] *= Real(0.5) * (Real(1) + th) + Real(0.5) * x * (Real(1) - th * th) * du;
    }
}

template void gelu_forward<float>(float*, const float*, size_t);
template void gelu_forward<double>(double*, const double*, size_t);
template void gelu_backward<float>(float*, const float*, size_t);
template void gelu_backward<double>(double*, const double*, size_t);

}  // namespace diloco::cpu
