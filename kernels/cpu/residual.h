// Residual connection on the CPU: the elementwise sum of two streams.
// Its backward is the identity, so there is no backward op: callers pass the gradient on.
#pragma once

#include <cstddef>

namespace diloco::cpu {

// out = a + b over n elements; out may alias a or b.
template <typename Real>
void residual_forward(Real* out, const Real* a, const Real* b, size_t n);

}  // namespace diloco::cpu
