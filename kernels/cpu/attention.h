// Causal multi-head self-attention on the CPU, materialising the softmax probabilities.
// qkv is [B,T,3C] (q, k, v per position; head h owns channels h*hs..(h+1)*hs, hs = C/NH).
#pragma once

namespace diloco::cpu {

// out [B,T,C]; att [B,NH,T,T] gets the softmax probabilities (zero above the diagonal), which
// the backward pass reads back. Scores are scaled by 1/sqrt(hs).
template <typename Real>
void attention_forward(Real* out, Real* att, const Real* qkv, int B, int T, int C, int NH);
// dqkv is overwritten.
template <typename Real>
void attention_backward(Real* dqkv, const Real* dout, const Real* qkv, const Real* att, int B,
                        int T, int C, int NH);

}  // namespace diloco::cpu
