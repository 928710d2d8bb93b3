// Elementwise residual add, out = a + b (out may alias either input), 16-byte accesses when the
// pointers allow, with a scalar tail.
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/ops.h"

namespace diloco::cuda {
namespace {

template <typename S, int V>
__global__ void residual_kernel(S* out, const S* a, const S* b, size_t n) {
    const size_t i = (static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x) * V;
    if (i >= n) return;
    if (i + V <= n) {
        float x[V], y[V];
        load<V>(x, a + i);
        load<V>(y, b + i);
#pragma unroll
        for (int k = 0; k < V; k++) x[k] += y[k];
        store<V>(out + i, x);
        return;
    }
    for (size_t k = i; k < n; k++) out[k] = from_float<S>(to_float(a[k]) + to_float(b[k]));
}

}  // namespace

void residual_forward(Context& ctx, void* out, const void* a, const void* b, size_t n) {
    if (n == 0) return;
    const bool vec = aligned16(out) && aligned16(a) && aligned16(b);
    dispatch_vec(ctx.bf16, vec, [&](auto tag, auto v) {
        using S = typename decltype(tag)::type;
        constexpr int V = decltype(v)::value;
        residual_kernel<S, V><<<ceil_div(ceil_div(n, V), 256), 256, 0, ctx.stream>>>(
            static_cast<S*>(out), static_cast<const S*>(a), static_cast<const S*>(b), n);
        CUDA_LAUNCH_CHECK();
    });
}

}  // namespace diloco::cuda
