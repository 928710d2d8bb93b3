// Causal multi-head self-attention on the CPU: scores, stable softmax, weighted values, and the
// backward through all three, as small matrix products per (batch, head) over blocks of queries.
#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/simd.h"

namespace diloco::cpu {

namespace {

// Queries per block: block r0..r1 only sees keys 0..r1, so the products skip most of the
// masked upper triangle, while each product stays large enough for the BLAS.
constexpr int kQueryBlock = 64;

// Row of raw scores s[0..len) -> softmax(scale * s) in place, and zeros up to T.
template <typename Real>
DILOCO_CPU_CLONES void softmax_row(Real* p, int len, int T, Real scale) {
    Real max = p[0];
#pragma omp simd reduction(max : max)
    for (int i = 1; i < len; i++) max = std::max(max, p[i]);
    Real sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int i = 0; i < len; i++) {
        p[i] = exp_fast(scale * (p[i] - max));
        sum += p[i];
    }
    const Real inv = Real(1) / sum;
    for (int i = 0; i < len; i++) p[i] *= inv;
    for (int i = len; i < T; i++) p[i] = 0;
}

// With p the probabilities and dp = dout . v over len keys: dp <- dscore =
// scale * p * (dp - sum(p * dp)). Where p is 0 (above the diagonal) so is dscore.
template <typename Real>
DILOCO_CPU_CLONES void softmax_backward_row(Real* dp, const Real* p, int len, Real scale) {
    Real weighted = 0;
#pragma omp simd reduction(+ : weighted)
    for (int i = 0; i < len; i++) weighted += p[i] * dp[i];
    for (int i = 0; i < len; i++) dp[i] = scale * p[i] * (dp[i] - weighted);
}

}  // namespace

template <typename Real>
void attention_forward(Real* out, Real* att, const Real* qkv, int B, int T, int C, int NH) {
    const int hs = C / NH, C3 = 3 * C;
    const Real scale = Real(1) / std::sqrt(Real(hs));
#pragma omp parallel for collapse(2) schedule(dynamic)
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < NH; h++) {
            const Real* q = qkv + static_cast<size_t>(b) * T * C3 + h * hs;
            const Real *k = q + C, *v = q + 2 * C;
            Real* p = att + (static_cast<size_t>(b) * NH + h) * T * T;
            Real* o = out + static_cast<size_t>(b) * T * C + h * hs;
            for (int r0 = 0; r0 < T; r0 += kQueryBlock) {
                const int r1 = std::min(T, r0 + kQueryBlock), rows = r1 - r0;
                Real* block = p + static_cast<size_t>(r0) * T;
                gemm(kNoTrans, kTrans, rows, r1, hs, q + static_cast<size_t>(r0) * C3, C3, k, C3,
                     Real(0), block, T);
                for (int t = r0; t < r1; t++)
                    softmax_row(p + static_cast<size_t>(t) * T, t + 1, T, scale);
                gemm(kNoTrans, kNoTrans, rows, hs, r1, block, T, v, C3, Real(0),
                     o + static_cast<size_t>(r0) * C, C);
            }
        }
    }
}

// Keys and values collect gradient from every later query: the query blocks run from the last
// (which covers every key, so it overwrites dk and dv) to the first (which adds), in one order.
template <typename Real>
void attention_backward(Real* dqkv, const Real* dout, const Real* qkv, const Real* att, int B,
                        int T, int C, int NH) {
    const int hs = C / NH, C3 = 3 * C;
    const Real scale = Real(1) / std::sqrt(Real(hs));
    const int last = (T - 1) / kQueryBlock * kQueryBlock;
#pragma omp parallel
    {
        // Each thread's dscores of one query block, reused across heads and calls.
        static thread_local std::vector<Real> dscores;
        dscores.resize(static_cast<size_t>(kQueryBlock) * T);
#pragma omp for collapse(2) schedule(dynamic)
        for (int b = 0; b < B; b++) {
            for (int h = 0; h < NH; h++) {
                const size_t offset = static_cast<size_t>(b) * T * C3 + h * hs;
                const Real *q = qkv + offset, *k = q + C, *v = q + 2 * C;
                Real *dq = dqkv + offset, *dk = dq + C, *dv = dq + 2 * C;
                const Real* p = att + (static_cast<size_t>(b) * NH + h) * T * T;
                const Real* d = dout + static_cast<size_t>(b) * T * C + h * hs;
                Real* ds = dscores.data();
                for (int r0 = last; r0 >= 0; r0 -= kQueryBlock) {
                    const int r1 = std::min(T, r0 + kQueryBlock), rows = r1 - r0;
                    const Real beta = r0 == last ? Real(0) : Real(1);
                    const Real* pblock = p + static_cast<size_t>(r0) * T;
                    const Real* dblock = d + static_cast<size_t>(r0) * C;
                    gemm(kTrans, kNoTrans, r1, hs, rows, pblock, T, dblock, C, beta, dv, C3);
                    gemm(kNoTrans, kTrans, rows, r1, hs, dblock, C, v, C3, Real(0), ds, T);
                    for (int t = r0; t < r1; t++)
                        softmax_backward_row(ds + static_cast<size_t>(t - r0) * T,
                                             p + static_cast<size_t>(t) * T, r1, scale);
                    gemm(kNoTrans, kNoTrans, rows, hs, r1, ds, T, k, C3, Real(0),
                         dq + static_cast<size_t>(r0) * C3, C3);
                    gemm(kTrans, kNoTrans, r1, hs, rows, ds, T, q + static_cast<size_t>(r0) * C3,
                         C3, beta, dk, C3);
                }
            }
        }
    }
}

template void attention_forward<float>(float*, float*, const float*, int, int, int, int);
template void attention_forward<double>(double*, double*, const double*, int, int, int, int);
template void attention_backward<float>(float*, const float*, const float*, const float*, int,
                                        int, int, int);
template void attention_backward<double>(double*, const double*, const double*, const double*,
                                         int, int, int, int);

}  // namespace diloco::cpu
