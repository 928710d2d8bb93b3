// Matrix products on the CPU: the products go to CBLAS (sgemm / dgemm), or to plain OpenMP
// loops in a build without a BLAS; the bias and GELU epilogues and the bias gradient are loops.
#include "kernels/cpu/matmul.h"

#ifdef DILOCO_HAVE_BLAS
#include <cblas.h>
#endif

#include <algorithm>
#include <cstddef>

#include "kernels/cpu/gelu.h"

namespace diloco::cpu {

namespace {

constexpr int kColumnBlock = 32;

enum Transpose { kNoTrans, kTrans };

#ifdef DILOCO_HAVE_BLAS
CBLAS_TRANSPOSE blas(Transpose t) { return t == kTrans ? CblasTrans : CblasNoTrans; }

// c = op(a) @ op(b) + beta * c, row-major, [m,k] @ [k,n]; overloads pick the precision.
void gemm(Transpose ta, Transpose tb, int m, int n, int k, const float* a, int lda,
          const float* b, int ldb, float beta, float* c, int ldc) {
    cblas_sgemm(CblasRowMajor, blas(ta), blas(tb), m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
}
void gemm(Transpose ta, Transpose tb, int m, int n, int k, const double* a, int lda,
          const double* b, int ldb, double beta, double* c, int ldc) {
    cblas_dgemm(CblasRowMajor, blas(ta), blas(tb), m, n, k, 1.0, a, lda, b, ldb, beta, c, ldc);
}
#else
// The same product without a BLAS: slow, but it lets the oracle build where none is installed.
template <typename Real>
void gemm(Transpose ta, Transpose tb, int m, int n, int k, const Real* a, int lda, const Real* b,
          int ldb, Real beta, Real* c, int ldc) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            Real acc = 0;
            for (int p = 0; p < k; p++) {
                Real x = ta == kTrans ? a[size_t(p) * lda + i] : a[size_t(i) * lda + p];
                Real y = tb == kTrans ? b[size_t(j) * ldb + p] : b[size_t(p) * ldb + j];
                acc += x * y;
            }
            Real& out = c[size_t(i) * ldc + j];
            out = beta == Real(0) ? acc : beta * out + acc;
        }
    }
}
#endif

}  // namespace

template <typename Real>
void matmul_forward(Real* out, Real* pre_gelu, const Real* inp, const Real* weight,
                    const Real* bias, int N, int C, int OC) {
    Real* acc = pre_gelu ? pre_gelu : out;
    gemm(kNoTrans, kTrans, N, OC, C, inp, C, weight, C, Real(0), acc, OC);
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
    gemm(kNoTrans, kNoTrans, N, C, OC, dout, OC, weight, C, Real(0), dinp, C);
    gemm(kTrans, kNoTrans, OC, C, N, dout, OC, inp, C, Real(1), dweight, C);
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
