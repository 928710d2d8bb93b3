// GELU on the CPU (tanh approximation) and its exact derivative, elementwise.
// With u = s (x + a x^3): gelu = x (1 + tanh u) / 2, gelu' = (1 + tanh u) / 2 + x sech^2(u) u' / 2.
#include "kernels/cpu/gelu.h"

#include <algorithm>
#include <cmath>

#include "kernels/cpu/simd.h"

namespace diloco::cpu {

namespace {

constexpr double kSqrt2OverPi = 0.79788456080286535588;
constexpr double kCubic = 0.044715;
// Elements per parallel chunk: a few pages, many chunks per thread at the model's sizes.
constexpr size_t kChunk = 4096;

// tanh u = 1 - 2 / (e^2u + 1): one vectorisable exp instead of a libm call per element; in fp32
// its absolute error (a few 1e-8) is below the resolution of 1 + tanh u.
template <typename Real>
Real tanh_of(Real u) {
    return Real(1) - Real(2) / (exp_fast(Real(2) * u) + Real(1));
}

template <typename Real>
DILOCO_CPU_CLONES void gelu_forward_chunk(Real* out, const Real* inp, size_t n) {
    const Real s = Real(kSqrt2OverPi), a = Real(kCubic);
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        const Real x = inp[i];
        out[i] = Real(0.5) * x * (Real(1) + tanh_of(s * (x + a * x * x * x)));
    }
}

template <typename Real>
DILOCO_CPU_CLONES void gelu_backward_chunk(Real* dout, const Real* inp, size_t n) {
    const Real s = Real(kSqrt2OverPi), a = Real(kCubic);
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        const Real x = inp[i];
        const Real th = tanh_of(s * (x + a * x * x * x));
        const Real du = s * (Real(1) + Real(3) * a * x * x);
        dout[i] *= Real(0.5) * (Real(1) + th) + Real(0.5) * x * (Real(1) - th * th) * du;
    }
}

}  // namespace

template <typename Real>
void gelu_forward(Real* out, const Real* inp, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t c = 0; c < n; c += kChunk)
        gelu_forward_chunk(out + c, inp + c, std::min(kChunk, n - c));
}

template <typename Real>
void gelu_backward(Real* dout, const Real* inp, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t c = 0; c < n; c += kChunk)
        gelu_backward_chunk(dout + c, inp + c, std::min(kChunk, n - c));
}

template void gelu_forward<float>(float*, const float*, size_t);
template void gelu_forward<double>(double*, const double*, size_t);
template void gelu_backward<float>(float*, const float*, size_t);
template void gelu_backward<double>(double*, const double*, size_t);

}  // namespace diloco::cpu
