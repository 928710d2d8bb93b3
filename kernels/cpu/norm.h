// Sum of squares on the CPU, for gradient-norm clipping: double accumulation in fixed chunks,
// so the result depends on neither the number of threads nor their scheduling.
#pragma once

#include <cstddef>

namespace diloco::cpu {

template <typename Real>
double sum_squares(const Real* x, size_t n);

}  // namespace diloco::cpu
