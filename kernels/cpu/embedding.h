// Token + position embedding on the CPU: the table lookup and the backward that scatters into the
// tables. Templates over the scalar type, instantiated for float (the backend) and double (tests).
#pragma once

#include <cstdint>

namespace diloco::cpu {

// out[b,t,:] = wte[tokens[b,t],:] + wpe[t,:]
template <typename Real>
void embedding_forward(Real* out, const int32_t* tokens, const Real* wte, const Real* wpe, int B,
                       int T, int C);
// dwte[tokens[b,t],:] += dout[b,t,:]; dwpe[t,:] += dout[b,t,:] for every b.
template <typename Real>
void embedding_backward(Real* dwte, Real* dwpe, const Real* dout, const int32_t* tokens, int B,
                        int T, int C);

}  // namespace diloco::cpu
