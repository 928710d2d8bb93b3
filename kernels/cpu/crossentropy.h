// Fused softmax + cross-entropy on the CPU, over rows of Vp logits of which the first V are real.
// The loss gradient overwrites the logits in place, as the GPU kernel does.
#pragma once

#include <cstdint>

namespace diloco::cpu {

// losses[n] = -log softmax(logits[n, :V])[targets[n]]. When grad_scale != 0 the logits become
// grad_scale * (softmax - onehot(target)), with the padding columns V..Vp set to zero.
// Returns the sum of the losses, accumulated in double. Throws diloco::Error, before touching
// anything, when a target is outside [0, V).
template <typename Real>
double softmax_cross_entropy(Real* logits, Real* losses, const int32_t* targets, int N, int V,
                             int Vp, Real grad_scale);

}  // namespace diloco::cpu
