// Matrix products on the CPU: the products go to parallel_gemm (CBLAS, or plain loops in a build
// without a BLAS); the bias and GELU epilogues and the bias gradient are loops.
#include "kernels/cpu/matmul.h"

#include <algorithm>
#include <cstddef>

#include "kernels/cpu/gelu.h"
#include "kernels/cpu/gemm.h"

namespace diloco::cpu {

namespace {
constexpr int kColumnBlock = 32;
}  // namespace

template <typename Real>
void matmul_forward(Real* out, Real* pre_gelu, const Real* inp, const Real* weight,
                    const Real* bias, int N, int C, int OC) {
    Real* acc = pre_gelu ? pre_gelu : out;
    parallel_gemm(kNoTrans, kTrans, N, OC, C, inp, C, weight, C, Real(0), acc, OC);
    if (bias) {
#pragma omp parallel for schedule(static)
        for (int n = 0; n < N; n++) {
            Real* row = acc + static_cast<size_t>(n) * OC;
            for (int o = 0; o < OC; o++) row[o] += bias[o];
        }
    }
    if (pre_gelu) gelu_forward(out, pre_gelu, static_cast<size_t>(N) * OC);
}

template <typename Real>
void matmul_backward(Real* dinp, Real* dweight, Real* dbias, Real* dout, const Real* inp,
                     const Real* weight, const Real* pre_gelu, int N, int C, int OC) {
    if (pre_gelu) gelu_backward(dout, pre_gelu, static_cast<size_t>(N) * OC);
    parallel_gemm(kNoTrans, kNoTrans, N, C, OC, dout, OC, weight, C, Real(0), dinp, C);
    parallel_gemm(kTrans, kNoTrans, OC, C, N, dout, OC, inp, C, Real(1), dweight, C);
    if (!dbias) return;
    // Split by output columns so that each column sum keeps row order, whatever the threads.
#pragma omp parallel for schedule(static)
    for (int o0 = 0; o0 < OC; o0 += kColumnBlock) {
        const int o1 = std::min(OC, o0 + kColumnBlock);
        for (int n = 0; n < N; n++) {
            const Real* row = dout + static_cast<size_t>(n) * OC;
            for (int o = o0; o < o1; o++) dbias[o] += row[o];
        }
    }
}

template void matmul_forward<float>(float*, float*, const float*, const float*, const float*, int,
                                    int, int);
template void matmul_forward<double>(double*, double*, const double*, const double*,
                                     const double*, int, int, int);
template void matmul_backward<float>(float*, float*, float*, float*, const float*, const float*,
                                     const float*, int, int, int);
template void matmul_backward<double>(double*, double*, double*, double*, const double*,
                                      const double*, const double*, int, int, int);

}  // namespace diloco::cpu
