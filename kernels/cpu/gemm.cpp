// General matrix products for the CPU ops: CBLAS on one thread per call (or plain loops without
// a BLAS), and the blocked product that spreads one over the OpenMP threads.
#include "kernels/cpu/gemm.h"

#ifdef DILOCO_HAVE_BLAS
#include <cblas.h>

#include <cstdint>

// Each BLAS has its own call for its thread count; weak, so that the one linked answers and the
// others are null (OpenBLAS, MKL, BLIS).
extern "C" {
void openblas_set_num_threads(int) __attribute__((weak));
void MKL_Set_Num_Threads(int) __attribute__((weak));
void bli_thread_set_num_threads(int64_t) __attribute__((weak));
}
#endif

#include <algorithm>
#include <cstddef>

namespace diloco::cpu {

namespace {
// Blocks of at least 256 rows (or columns) keep the BLAS near its full rate, and at most 8
// blocks bound how often the other operand is packed again.
constexpr int kMinBlock = 256, kMaxBlocks = 8;
}  // namespace

#ifdef DILOCO_HAVE_BLAS
static CBLAS_TRANSPOSE blas(Transpose t) { return t == kTrans ? CblasTrans : CblasNoTrans; }

// The BLAS's own threads would compete with OpenMP's for the same cores: it runs on the
// calling thread, and parallel_gemm (or the caller's parallel loop) spreads the work.
static void blas_on_calling_thread() {
    static const bool once = [] {
        if (openblas_set_num_threads) openblas_set_num_threads(1);
        if (MKL_Set_Num_Threads) MKL_Set_Num_Threads(1);
        if (bli_thread_set_num_threads) bli_thread_set_num_threads(1);
        return true;
    }();
    (void)once;
}

void gemm(Transpose ta, Transpose tb, int m, int n, int k, const float* a, int lda,
          const float* b, int ldb, float beta, float* c, int ldc) {
    blas_on_calling_thread();
    cblas_sgemm(CblasRowMajor, blas(ta), blas(tb), m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
}
void gemm(Transpose ta, Transpose tb, int m, int n, int k, const double* a, int lda,
          const double* b, int ldb, double beta, double* c, int ldc) {
    blas_on_calling_thread();
    cblas_dgemm(CblasRowMajor, blas(ta), blas(tb), m, n, k, 1.0, a, lda, b, ldb, beta, c, ldc);
}

#else
// The same product without a BLAS: slow, but it lets the oracle build where none is installed.
template <typename Real>
static void loop_gemm(Transpose ta, Transpose tb, int m, int n, int k, const Real* a, int lda,
                      const Real* b, int ldb, Real beta, Real* c, int ldc) {
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
void gemm(Transpose ta, Transpose tb, int m, int n, int k, const float* a, int lda,
          const float* b, int ldb, float beta, float* c, int ldc) {
    loop_gemm(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc);
}
void gemm(Transpose ta, Transpose tb, int m, int n, int k, const double* a, int lda,
          const double* b, int ldb, double beta, double* c, int ldc) {
    loop_gemm(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc);
}
#endif

template <typename Real>
void parallel_gemm(Transpose ta, Transpose tb, int m, int n, int k, const Real* a, int lda,
                   const Real* b, int ldb, Real beta, Real* c, int ldc) {
    const bool by_rows = m >= n;
    const int dim = by_rows ? m : n;
    const int block = std::max(kMinBlock, (dim + kMaxBlocks - 1) / kMaxBlocks);
    const int blocks = (dim + block - 1) / block;
    // Dynamic: on a shared machine a thread that lost its core does not hold the others up.
#pragma omp parallel for schedule(dynamic)
    for (int i = 0; i < blocks; i++) {
        const int lo = i * block, len = std::min(block, dim - lo);
        if (by_rows) {
            const Real* rows = ta == kTrans ? a + lo : a + size_t(lo) * lda;
            gemm(ta, tb, len, n, k, rows, lda, b, ldb, beta, c + size_t(lo) * ldc, ldc);
        } else {
            const Real* cols = tb == kTrans ? b + size_t(lo) * ldb : b + lo;
            gemm(ta, tb, m, len, k, a, lda, cols, ldb, beta, c + lo, ldc);
        }
    }
}

template void parallel_gemm<float>(Transpose, Transpose, int, int, int, const float*, int,
                                   const float*, int, float, float*, int);
template void parallel_gemm<double>(Transpose, Transpose, int, int, int, const double*, int,
                                    const double*, int, double, double*, int);

}  // namespace diloco::cpu
