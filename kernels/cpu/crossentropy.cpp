// Fused softmax + cross-entropy on the CPU: per row, max-subtracted log-sum-exp for the loss,
// then (optionally) the scaled gradient softmax - onehot written over the logits.
#include "kernels/cpu/crossentropy.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>

#include "util/error.h"

namespace diloco::cpu {

template <typename Real>
double softmax_cross_entropy(Real* logits, Real* losses, const int32_t* targets, int N, int V,
                             int Vp, Real grad_scale) {
    for (int n = 0; n < N; n++) {
        require(targets[n] >= 0 && targets[n] < V,
                "cross-entropy: target id " + std::to_string(targets[n]) + " at row " +
                    std::to_string(n) + " is outside the vocabulary of " + std::to_string(V));
    }
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        Real* x = logits + static_cast<size_t>(n) * Vp;
        Real max = x[0];
        for (int i = 1; i < V; i++) max = std::max(max, x[i]);
        double sum = 0;  // up to 50k terms: double keeps the fp32 oracle's loss honest
        for (int i = 0; i < V; i++) sum += std::exp(x[i] - max);
        losses[n] = static_cast<Real>(std::log(sum) - (x[targets[n]] - max));
        if (grad_scale == Real(0)) continue;
        const Real inv = static_cast<Real>(1.0 / sum);
        for (int i = 0; i < V; i++) x[i] = grad_scale * (std::exp(x[i] - max) * inv);
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
