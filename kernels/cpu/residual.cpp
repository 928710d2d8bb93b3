// Residual connection on the CPU: out = a + b, elementwise.
// Each element reads its own inputs before writing, so out may alias either input.
#include "kernels/cpu/residual.h"

namespace diloco::cpu {

template <typename Real>
void residual_forward(Real* out, const Real* a, const Real* b, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

template void residual_forward<float>(float*, const float*, const float*, size_t);
template void residual_forward<double>(double*, const double*, const double*, size_t);

}  // namespace diloco::cpu
