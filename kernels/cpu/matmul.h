// Matrix products on the CPU through CBLAS: out = inp @ weight^T + bias, optionally fused with
// GELU, and the backward. Weights are [OC, C] row-major, as in the Backend interface.
#pragma once

namespace diloco::cpu {

// out[n,:] = inp[n,:] @ weight^T + bias (bias may be null). When pre_gelu is not null it gets
// the pre-activation and out gets gelu(pre_gelu).
template <typename Real>
void matmul_forward(Real* out, Real* pre_gelu, const Real* inp, const Real* weight,
                    const Real* bias, int N, int C, int OC);
// dinp = dout @ weight (overwritten); dweight += dout^T @ inp; dbias += column sums of dout (if
// not null). When pre_gelu is not null, dout is first multiplied in place by gelu'(pre_gelu).
template <typename Real>
void matmul_backward(Real* dinp, Real* dweight, Real* dbias, Real* dout, const Real* inp,
                     const Real* weight, const Real* pre_gelu, int N, int C, int OC);

}  // namespace diloco::cpu
