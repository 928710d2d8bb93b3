// GELU on the CPU, tanh approximation 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), and its
// exact derivative. matmul uses both for its fused bias + GELU epilogue.
#pragma once

#include <cstddef>

namespace diloco::cpu {

// out[i] = gelu(inp[i]); out may alias inp.
template <typename Real>
void gelu_forward(Real* out, const Real* inp, size_t n);
// dout[i] *= gelu'(inp[i]), in place: the gradient w.r.t. the pre-activation.
template <typename Real>
void gelu_backward(Real* dout, const Real* inp, size_t n);

}  // namespace diloco::cpu
