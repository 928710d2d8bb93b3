// Sum of squares of a storage buffer (the global gradient norm): fixed-size grid of per-block
// fp32 sums, added on the host in double in block order, so the result is bitwise repeatable.
#include <algorithm>
#include <vector>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/ops.h"

namespace diloco::cuda {
namespace {

constexpr int kThreads = 256;

template <typename S, int V>
__global__ void __launch_bounds__(kThreads)
    sum_squares_kernel(float* __restrict__ partial, const S* __restrict__ x, size_t n) {
    __shared__ float warps[kThreads / 32];
    const size_t packs = n / V;
    float acc = 0.0f;
    for (size_t i = static_cast<size_t>(blockIdx.x) * kThreads + threadIdx.x; i < packs;
         i += static_cast<size_t>(gridDim.x) * kThreads) {
        float y[V];
        load<V>(y, x + i * V);
#pragma unroll
        for (int k = 0; k < V; k++) acc += y[k] * y[k];
    }
    if (blockIdx.x == 0 && threadIdx.x == 0) {
        for (size_t i = packs * V; i < n; i++) acc += to_float(x[i]) * to_float(x[i]);
    }
    acc = warp_sum(acc);
    if (threadIdx.x % 32 == 0) warps[threadIdx.x / 32] = acc;
    __syncthreads();
    if (threadIdx.x == 0) {
        float s = 0.0f;
        for (int w = 0; w < kThreads / 32; w++) s += warps[w];
        partial[blockIdx.x] = s;
    }
}

}  // namespace

double sum_squares(Context& ctx, const void* x, size_t n) {
    if (n == 0) return 0.0;
    const bool vec = aligned16(x);
    const size_t packs = vec ? n / (16 / ctx.elem()) : n;
    const int blocks = static_cast<int>(
        std::clamp<size_t>(ceil_div(packs, kThreads), 1, 2 * static_cast<size_t>(ctx.sm_count)));
    auto* partial = static_cast<float*>(ctx.scratch.get(blocks * sizeof(float), ctx.stream));
    dispatch_vec(ctx.bf16, vec, [&](auto tag, auto v) {
        using S = typename decltype(tag)::type;
        sum_squares_kernel<S, decltype(v)::value>
            <<<blocks, kThreads, 0, ctx.stream>>>(partial, static_cast<const S*>(x), n);
        CUDA_LAUNCH_CHECK();
    });
    std::vector<float> host(blocks);
    CUDA_CHECK(cudaMemcpyAsync(host.data(), partial, blocks * sizeof(float), cudaMemcpyDeviceToHost,
                               ctx.stream));
    CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
    double sum = 0.0;
    for (float s : host) sum += s;
    return sum;
}

}  // namespace diloco::cuda
