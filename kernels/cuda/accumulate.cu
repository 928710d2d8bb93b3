// Gradient accumulation across micro-batches in fp32 where storage is bf16: add a storage
// buffer into an fp32 sum, and round the sum back into storage once, both 16-byte accesses.
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/ops.h"

namespace diloco::cuda {
namespace {

constexpr int kThreads = 256;

template <typename S, int V>
__global__ void accumulate_kernel(float* sum, const S* x, size_t n) {
    const size_t i = (static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x) * V;
    if (i >= n) return;
    if (i + V <= n) {
        float acc[V], y[V];
        load<V>(acc, sum + i);
        load<V>(y, x + i);
#pragma unroll
        for (int k = 0; k < V; k++) acc[k] += y[k];
        store<V>(sum + i, acc);
        return;
    }
    for (size_t k = i; k < n; k++) sum[k] += to_float(x[k]);
}

template <typename S, int V>
__global__ void store_kernel(S* dst, const float* src, size_t n) {
    const size_t i = (static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x) * V;
    if (i >= n) return;
    if (i + V <= n) {
        float y[V];
        load<V>(y, src + i);
        store<V>(dst + i, y);
        return;
    }
    for (size_t k = i; k < n; k++) dst[k] = from_float<S>(src[k]);
}

}  // namespace

// V is the storage type's 16-byte width; the fp32 side then moves V floats, up to 32 bytes,
// as one aligned pack (aligned32).
void accumulate_f32(Context& ctx, float* sum, const void* x, size_t n) {
    if (n == 0) return;
    dispatch_vec(ctx.bf16, aligned32(sum) && aligned16(x), [&](auto tag, auto v) {
        using S = typename decltype(tag)::type;
        constexpr int V = decltype(v)::value;
        accumulate_kernel<S, V><<<ceil_div(ceil_div(n, V), kThreads), kThreads, 0, ctx.stream>>>(
            sum, static_cast<const S*>(x), n);
        CUDA_LAUNCH_CHECK();
    });
}

void store_f32(Context& ctx, void* dst, const float* src, size_t n) {
    if (n == 0) return;
    dispatch_vec(ctx.bf16, aligned16(dst) && aligned32(src), [&](auto tag, auto v) {
        using S = typename decltype(tag)::type;
        constexpr int V = decltype(v)::value;
        store_kernel<S, V><<<ceil_div(ceil_div(n, V), kThreads), kThreads, 0, ctx.stream>>>(
            static_cast<S*>(dst), src, n);
        CUDA_LAUNCH_CHECK();
    });
}

}  // namespace diloco::cuda
