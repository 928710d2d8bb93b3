// Causal multi-head self-attention on the CPU: scores, stable softmax, weighted values, and the
// backward through all three. Plain loops, O(T^2) memory for the probabilities.
#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>
#include <vector>

namespace diloco::cpu {

template <typename Real>
void attention_forward(Real* out, Real* att, const Real* qkv, int B, int T, int C, int NH) {
    const int hs = C / NH;
    const size_t C3 = 3 * static_cast<size_t>(C);
    const Real scale = Real(1) / std::sqrt(Real(hs));
#pragma omp parallel for collapse(3) schedule(static)
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++) {
            for (int h = 0; h < NH; h++) {
                const Real* seq = qkv + static_cast<size_t>(b) * T * C3;
                const Real* q = seq + t * C3 + h * hs;
                Real* p = att + ((static_cast<size_t>(b) * NH + h) * T + t) * T;
                Real max = -std::numeric_limits<Real>::infinity();
                for (int t2 = 0; t2 <= t; t2++) {
                    const Real* k = seq + t2 * C3 + C + h * hs;
                    Real s = 0;
                    for (int i = 0; i < hs; i++) s += q[i] * k[i];
                    p[t2] = s * scale;
                    max = std::max(max, p[t2]);
                }
                Real sum = 0;
                for (int t2 = 0; t2 <= t; t2++) {
                    p[t2] = std::exp(p[t2] - max);
                    sum += p[t2];
                }
                for (int t2 = 0; t2 <= t; t2++) p[t2] /= sum;
                for (int t2 = t + 1; t2 < T; t2++) p[t2] = 0;

                Real* o = out + (static_cast<size_t>(b) * T + t) * C + h * hs;
                for (int i = 0; i < hs; i++) o[i] = 0;
                for (int t2 = 0; t2 <= t; t2++) {
                    const Real* v = seq + t2 * C3 + 2 * C + h * hs;
                    for (int i = 0; i < hs; i++) o[i] += p[t2] * v[i];
                }
            }
        }
    }
}

// A key or value at position t2 collects gradient from every later query, so one thread owns a
// whole (batch, head) pair and walks its queries in order: no races, a fixed summation order.
// With p the probabilities and dp = dout . v: dscore = p * (dp - sum(p * dp)).
template <typename Real>
void attention_backward(Real* dqkv, const Real* dout, const Real* qkv, const Real* att, int B,
                        int T, int C, int NH) {
    const int hs = C / NH;
    const size_t C3 = 3 * static_cast<size_t>(C);
    const Real scale = Real(1) / std::sqrt(Real(hs));
    std::memset(dqkv, 0, static_cast<size_t>(B) * T * C3 * sizeof(Real));
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < NH; h++) {
            std::vector<Real> dp(T);
            const Real* seq = qkv + static_cast<size_t>(b) * T * C3;
            Real* dseq = dqkv + static_cast<size_t>(b) * T * C3;
            for (int t = 0; t < T; t++) {
                const Real* p = att + ((static_cast<size_t>(b) * NH + h) * T + t) * T;
                const Real* d = dout + (static_cast<size_t>(b) * T + t) * C + h * hs;
                Real weighted = 0;
                for (int t2 = 0; t2 <= t; t2++) {
                    const Real* v = seq + t2 * C3 + 2 * C + h * hs;
                    Real* dv = dseq + t2 * C3 + 2 * C + h * hs;
                    dp[t2] = 0;
                    for (int i = 0; i < hs; i++) {
                        dp[t2] += d[i] * v[i];
                        dv[i] += p[t2] * d[i];
                    }
                    weighted += p[t2] * dp[t2];
                }
                const Real* q = seq + t * C3 + h * hs;
                Real* dq = dseq + t * C3 + h * hs;
                for (int t2 = 0; t2 <= t; t2++) {
                    const Real ds = p[t2] * (dp[t2] - weighted) * scale;
                    const Real* k = seq + t2 * C3 + C + h * hs;
                    Real* dk = dseq + t2 * C3 + C + h * hs;
                    for (int i = 0; i < hs; i++) {
                        dq[i] += ds * k[i];
                        dk[i] += ds * q[i];
                    }
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
