// Fused softmax + cross-entropy on the CPU: per row, max-subtracted log-sum-exp for the loss,
// then (optionally) the scaled gradient softmax - onehot written over the logits.
#include "kernels/cpu/crossentropy.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>

#include "kernels/cpu/simd.h"
#include "util/error.h"

namespace diloco::cpu {

namespace {

// Reductions keep kLanes partial results, combined at the end: independent chains the CPU
// overlaps, in one summation order whatever the vector width. (Without -ffast-math the compiler
// may not vectorise a reduction itself; the exponentials are a plain loop that it does.)
constexpr int kLanes = 16, kChunk = 256;

template <typename Real>
DILOCO_CPU_CLONES Real row_max(const Real* x, int V) {
    Real lane[kLanes];
    for (int j = 0; j < kLanes; j++) lane[j] = x[0];
    int i = 0;
    for (; i + kLanes <= V; i += kLanes)
        for (int j = 0; j < kLanes; j++) lane[j] = std::max(lane[j], x[i + j]);
    for (; i < V; i++) lane[0] = std::max(lane[0], x[i]);
    return *std::max_element(lane, lane + kLanes);
}

// Sum of e^(x - max) in double (up to 50k terms: double keeps the fp32 loss honest); with
// store, each exponential is also kept in x for the gradient, so it is computed once.
template <typename Real>
DILOCO_CPU_CLONES double exp_sum(Real* x, int V, Real max, bool store) {
    Real scratch[kChunk];
    double lane[kLanes] = {};
    for (int c = 0; c < V; c += kChunk) {
        const int n = std::min(kChunk, V - c);
        Real* e = store ? x + c : scratch;
        for (int i = 0; i < n; i++) e[i] = exp_fast(x[c + i] - max);
        int i = 0;
        for (; i + kLanes <= n; i += kLanes)
            for (int j = 0; j < kLanes; j++) lane[j] += e[i + j];
        for (; i < n; i++) lane[i % kLanes] += e[i];
    }
    double sum = 0;
    for (double s : lane) sum += s;
    return sum;
}

template <typename Real>
DILOCO_CPU_CLONES void scale_row(Real* x, int V, Real scale) {
    for (int i = 0; i < V; i++) x[i] *= scale;
}

}  // namespace

template <typename Real>
double softmax_cross_entropy(Real* logits, Real* losses, const int32_t* targets, int N, int V,
                             int Vp, Real grad_scale) {
    for (int n = 0; n < N; n++) {
        if (targets[n] < 0 || targets[n] >= V)
            throw Error("cross-entropy: target id " + std::to_string(targets[n]) + " at row " +
                        std::to_string(n) + " is outside the vocabulary of " + std::to_string(V));
    }
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        Real* x = logits + static_cast<size_t>(n) * Vp;
        const Real max = row_max(x, V), target = x[targets[n]];
        const double sum = exp_sum(x, V, max, grad_scale != Real(0));
        losses[n] = static_cast<Real>(std::log(sum) - (target - max));
        if (grad_scale == Real(0)) continue;
        scale_row(x, V, static_cast<Real>(grad_scale / sum));
        x[targets[n]] -= grad_scale;
        for (int i = V; i < Vp; i++) x[i] = 0;
    }
    double total = 0;
    for (int n = 0; n < N; n++) total += losses[n];
    return total;
}

template double softmax_cross_entropy<float>(float*, float*, const int32_t*, int, int, int,
                                             float);
template double softmax_cross_entropy<double>(double*, double*, const int32_t*, int, int, int,
                                              double);

}  // namespace diloco::cpu
