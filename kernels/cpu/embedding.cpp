// Token + position embedding on the CPU: forward lookup and scatter-add backward.
// The backward splits the channels among threads, so a repeated token never races with itself.
#include "kernels/cpu/embedding.h"

#include <algorithm>
#include <cstddef>

namespace diloco::cpu {

namespace {
// 32 floats: two cache lines per row touched, and still several blocks per thread at C = 768.
constexpr int kChannelBlock = 32;
}  // namespace

template <typename Real>
void embedding_forward(Real* out, const int32_t* tokens, const Real* wte, const Real* wpe, int B,
                       int T, int C) {
#pragma omp parallel for schedule(static)
    for (int bt = 0; bt < B * T; bt++) {
        const Real* tok = wte + static_cast<size_t>(tokens[bt]) * C;
        const Real* pos = wpe + static_cast<size_t>(bt % T) * C;
        Real* o = out + static_cast<size_t>(bt) * C;
        for (int i = 0; i < C; i++) o[i] = tok[i] + pos[i];
    }
}

// Each thread owns whole channel blocks and visits the positions in order, so every sum is
// taken in the same order whatever the number of threads.
template <typename Real>
void embedding_backward(Real* dwte, Real* dwpe, const Real* dout, const int32_t* tokens, int B,
                        int T, int C) {
#pragma omp parallel for schedule(static)
    for (int c0 = 0; c0 < C; c0 += kChannelBlock) {
        const int c1 = std::min(C, c0 + kChannelBlock);
        for (int bt = 0; bt < B * T; bt++) {
            const Real* d = dout + static_cast<size_t>(bt) * C;
            Real* dtok = dwte + static_cast<size_t>(tokens[bt]) * C;
            Real* dpos = dwpe + static_cast<size_t>(bt % T) * C;
            for (int i = c0; i < c1; i++) {
                dtok[i] += d[i];
                dpos[i] += d[i];
            }
        }
    }
}

template void embedding_forward<float>(float*, const int32_t*, const float*, const float*, int,
                                       int, int);
template void embedding_forward<double>(double*, const int32_t*, const double*, const double*,
                                        int, int, int);
template void embedding_backward<float>(float*, float*, const float*, const int32_t*, int, int,
                                        int);
template void embedding_backward<double>(double*, double*, const double*, const int32_t*, int,
                                          int, int);

}  // namespace diloco::cpu
