// General matrix products for the CPU ops: one call on the calling thread (CBLAS, or plain loops
// in a build without a BLAS), and the same product cut into blocks spread over OpenMP threads.
#pragma once

namespace diloco::cpu {

enum Transpose { kNoTrans, kTrans };

// c = op(a) @ op(b) + beta * c, row-major, op(a) [m,k], op(b) [k,n], on this thread only.
void gemm(Transpose ta, Transpose tb, int m, int n, int k, const float* a, int lda,
          const float* b, int ldb, float beta, float* c, int ldc);
void gemm(Transpose ta, Transpose tb, int m, int n, int k, const double* a, int lda,
          const double* b, int ldb, double beta, double* c, int ldc);

// The same product on all OpenMP threads: the larger of m and n is cut into blocks whose size
// depends on the shape only, each block one gemm, so the bits never depend on the threads, and
// the BLAS never starts threads of its own to fight ours.
template <typename Real>
void parallel_gemm(Transpose ta, Transpose tb, int m, int n, int k, const Real* a, int lda,
                   const Real* b, int ldb, Real beta, Real* c, int ldc);

}  // namespace diloco::cpu
