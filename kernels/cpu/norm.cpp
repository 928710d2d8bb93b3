// Sum of squares on the CPU: chunks of kChunk elements summed in double in parallel, then the
// chunk sums added serially in chunk order, which fixes the rounding for any thread count.
#include "kernels/cpu/norm.h"

#include <algorithm>
#include <vector>

namespace diloco::cpu {

namespace {
constexpr size_t kChunk = 4096;
}  // namespace

template <typename Real>
double sum_squares(const Real* x, size_t n) {
    const size_t chunks = (n + kChunk - 1) / kChunk;
    std::vector<double> partial(chunks);
#pragma omp parallel for schedule(static)
    for (size_t c = 0; c < chunks; c++) {
        const size_t end = std::min(n, (c + 1) * kChunk);
        double s = 0;
        for (size_t i = c * kChunk; i < end; i++) s += double(x[i]) * double(x[i]);
        partial[c] = s;
    }
    double total = 0;
    for (double s : partial) total += s;
    return total;
}

template double sum_squares<float>(const float*, size_t);
template double sum_squares<double>(const double*, size_t);

}  // namespace diloco::cpu
