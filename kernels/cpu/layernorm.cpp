// LayerNorm on the CPU: forward (two-pass mean and variance), backward, fused residual + forward.
// Rows are independent in the forward; the backward's weight and bias sums run per channel block.
#include "kernels/cpu/layernorm.h"

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "kernels/cpu/residual.h"
#include "kernels/cpu/simd.h"

namespace diloco::cpu {

namespace {

constexpr double kEps = 1e-5;
constexpr int kChannelBlock = 32;

// Variance from the deviations rather than E[x^2] - mean^2, which cancels badly in fp32.
template <typename Real>
DILOCO_CPU_CLONES void layernorm_row(Real* o, Real* mean, Real* rstd, const Real* x,
                                     const Real* weight, const Real* bias, int C) {
    Real m = 0;
#pragma omp simd reduction(+ : m)
    for (int i = 0; i < C; i++) m += x[i];
    m /= C;
    Real var = 0;
#pragma omp simd reduction(+ : var)
    for (int i = 0; i < C; i++) var += (x[i] - m) * (x[i] - m);
    var /= C;
    const Real r = Real(1) / std::sqrt(var + Real(kEps));
    for (int i = 0; i < C; i++) o[i] = (x[i] - m) * r * weight[i] + bias[i];
    *mean = m;
    *rstd = r;
}

// With xhat = (x - mean) * rstd and g = weight * dout, per row:
// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)).
template <typename Real>
DILOCO_CPU_CLONES void layernorm_backward_row(Real* dx, const Real* d, const Real* x,
                                              const Real* weight, Real mean, Real rstd, int C) {
    Real g_mean = 0, gx_mean = 0;
#pragma omp simd reduction(+ : g_mean, gx_mean)
    for (int i = 0; i < C; i++) {
        const Real g = weight[i] * d[i];
        g_mean += g;
        gx_mean += g * (x[i] - mean) * rstd;
    }
    g_mean /= C;
    gx_mean /= C;
    for (int i = 0; i < C; i++) {
        const Real xhat = (x[i] - mean) * rstd;
        dx[i] += (weight[i] * d[i] - g_mean - xhat * gx_mean) * rstd;
    }
}

// Channels c0..c1 of the weight and bias gradients, summed over the rows in row order.
template <typename Real>
DILOCO_CPU_CLONES void layernorm_param_grads(Real* dweight, Real* dbias, const Real* dout,
                                             const Real* inp, const Real* mean,
                                             const Real* rstd, int N, int C, int c0, int c1) {
    for (int n = 0; n < N; n++) {
        const size_t row = static_cast<size_t>(n) * C;
        for (int i = c0; i < c1; i++) {
            const Real xhat = (inp[row + i] - mean[n]) * rstd[n];
            dweight[i] += xhat * dout[row + i];
            dbias[i] += dout[row + i];
        }
    }
}

}  // namespace

template <typename Real>
void layernorm_forward(Real* out, Real* mean, Real* rstd, const Real* inp, const Real* weight,
                       const Real* bias, int N, int C) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const size_t row = static_cast<size_t>(n) * C;
        layernorm_row(out + row, mean + n, rstd + n, inp + row, weight, bias, C);
    }
}

template <typename Real>
void layernorm_backward(Real* dinp, Real* dweight, Real* dbias, const Real* dout, const Real* inp,
                        const Real* weight, const Real* mean, const Real* rstd, int N, int C) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const size_t row = static_cast<size_t>(n) * C;
        layernorm_backward_row(dinp + row, dout + row, inp + row, weight, mean[n], rstd[n], C);
    }
    // Weight and bias gradients sum over rows: split by channels so each sum keeps row order.
#pragma omp parallel for schedule(static)
    for (int c0 = 0; c0 < C; c0 += kChannelBlock)
        layernorm_param_grads(dweight, dbias, dout, inp, mean, rstd, N, C, c0,
                              std::min(C, c0 + kChannelBlock));
}

template <typename Real>
void residual_layernorm_forward(Real* residual, Real* out, Real* mean, Real* rstd,
                                const Real* inp1, const Real* inp2, const Real* weight,
                                const Real* bias, int N, int C) {
    residual_forward(residual, inp1, inp2, static_cast<size_t>(N) * C);
    layernorm_forward(out, mean, rstd, residual, weight, bias, N, C);
}

template void layernorm_forward<float>(float*, float*, float*, const float*, const float*,
                                       const float*, int, int);
template void layernorm_forward<double>(double*, double*, double*, const double*, const double*,
                                        const double*, int, int);
template void layernorm_backward<float>(float*, float*, float*, const float*, const float*,
                                        const float*, const float*, const float*, int, int);
template void layernorm_backward<double>(double*, double*, double*, const double*,
                                         const double*, const double*, const double*,
                                         const double*, int, int);
template void residual_layernorm_forward<float>(float*, float*, float*, float*, const float*,
                                                const float*, const float*, const float*, int,
                                                int);
template void residual_layernorm_forward<double>(double*, double*, double*, double*,
                                                 const double*, const double*, const double*,
                                                 const double*, int, int);

}  // namespace diloco::cpu
