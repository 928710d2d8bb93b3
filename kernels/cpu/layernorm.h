// LayerNorm on the CPU (eps 1e-5): forward, backward, and the fused residual + LayerNorm forward.
// mean and rstd are per-row statistics kept for the backward pass.
#pragma once

namespace diloco::cpu {

// out = (inp - mean) * rstd * weight + bias over the last dim C, for N rows.
template <typename Real>
void layernorm_forward(Real* out, Real* mean, Real* rstd, const Real* inp, const Real* weight,
                       const Real* bias, int N, int C);
// dinp += d/dinp (it collects the residual stream's gradient); dweight += ...; dbias += ...
template <typename Real>
void layernorm_backward(Real* dinp, Real* dweight, Real* dbias, const Real* dout, const Real* inp,
                        const Real* weight, const Real* mean, const Real* rstd, int N, int C);
// residual = inp1 + inp2, then out = layernorm(residual).
template <typename Real>
void residual_layernorm_forward(Real* residual, Real* out, Real* mean, Real* rstd,
                                const Real* inp1, const Real* inp2, const Real* weight,
                                const Real* bias, int N, int C);

}  // namespace diloco::cpu
