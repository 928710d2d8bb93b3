// Fused softmax + cross-entropy: one block per row, an online max/sum pass, then dlogits written
// over the logits in place. Probabilities are never stored; losses are summed on the host.
#include <vector>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/ops.h"

namespace diloco::cuda {
namespace {

constexpr int kMaxThreads = 1024;

// Running (max, sum of exp(x - max)); combining is symmetric, so butterfly lanes agree bitwise.
struct MaxSum {
    float m, s;
};

__device__ __forceinline__ MaxSum combine(MaxSum a, MaxSum b) {
    const float m = fmaxf(a.m, b.m);
    if (m == -INFINITY) return {m, 0.0f};
    return {m, a.s * expf(a.m - m) + b.s * expf(b.m - m)};
}

__device__ MaxSum warp_combine(MaxSum x) {
#pragma unroll
    for (int off = 16; off > 0; off /= 2) {
        MaxSum y{__shfl_xor_sync(0xffffffffu, x.m, off), __shfl_xor_sync(0xffffffffu, x.s, off)};
        x = combine(x, y);
    }
    return x;
}

// The whole block's (max, sum), in a fixed order, returned to every thread.
__device__ MaxSum block_combine(MaxSum x) {
    __shared__ MaxSum warps[kMaxThreads / 32];
    __shared__ MaxSum total;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nwarps = blockDim.x / 32;
    x = warp_combine(x);
    if (lane == 0) warps[warp] = x;
    __syncthreads();
    if (warp == 0) {
        MaxSum y = lane < nwarps ? warps[lane] : MaxSum{-INFINITY, 0.0f};
        y = warp_combine(y);
        if (lane == 0) total = y;
    }
    __syncthreads();
    return total;
}

template <typename S, int V>
__global__ void crossentropy_kernel(S* __restrict__ logits, float* __restrict__ losses,
                                    const int32_t* __restrict__ targets, int Vreal, int Vp,
                                    float grad_scale, int* __restrict__ bad_target) {
    const int n = blockIdx.x;
    S* row = logits + static_cast<size_t>(n) * Vp;
    const int target = targets[n];
    const bool valid = target >= 0 && target < Vreal;
    MaxSum acc{-INFINITY, 0.0f};
    for (int j0 = threadIdx.x * V; j0 < Vp; j0 += blockDim.x * V) {
        float x[V];
        load<V>(x, row + j0);
#pragma unroll
        for (int k = 0; k < V; k++) {
            if (j0 + k >= Vreal) break;
            if (x[k] > acc.m) {
                acc.s = acc.s * expf(acc.m - x[k]) + 1.0f;
                acc.m = x[k];
            } else {
                acc.s += expf(x[k] - acc.m);
            }
        }
    }
    const MaxSum all = block_combine(acc);
    const float lse = all.m + logf(all.s);
    if (threadIdx.x == 0) {
        if (valid) {
            losses[n] = lse - to_float(row[target]);
        } else {
            losses[n] = NAN;
            atomicOr(bad_target, 1);
        }
    }
    if (grad_scale == 0.0f) return;
    // Thread 0 has read row[target]; nobody overwrites the row before that.
    __syncthreads();
    for (int j0 = threadIdx.x * V; j0 < Vp; j0 += blockDim.x * V) {
        float x[V];
        load<V>(x, row + j0);
#pragma unroll
        for (int k = 0; k < V; k++) {
            const int j = j0 + k;
            x[k] = j < Vreal ? grad_scale * (expf(x[k] - lse) - (j == target ? 1.0f : 0.0f)) : 0.0f;
        }
        store<V>(row + j0, x);
    }
}

}  // namespace

double softmax_cross_entropy(Context& ctx, void* logits, float* losses, const int32_t* targets,
                             int N, int V, int Vp, float grad_scale) {
    require(V > 0 && V <= Vp, "softmax_cross_entropy: vocabulary " + std::to_string(V) +
                                  " does not fit the padded width " + std::to_string(Vp));
    if (N == 0) return 0.0;
    CUDA_CHECK(cudaMemsetAsync(ctx.flag, 0, sizeof(int), ctx.stream));
    const bool vec = aligned16(logits) && Vp % (16 / ctx.elem()) == 0;
    dispatch_vec(ctx.bf16, vec, [&](auto tag, auto v) {
        using S = typename decltype(tag)::type;
        constexpr int W = decltype(v)::value;
        const int per_row = (Vp + W - 1) / W;
        const int threads = per_row >= kMaxThreads ? kMaxThreads : (per_row + 31) / 32 * 32;
        crossentropy_kernel<S, W><<<N, threads, 0, ctx.stream>>>(
            static_cast<S*>(logits), losses, targets, V, Vp, grad_scale, ctx.flag);
        CUDA_LAUNCH_CHECK();
    });
    std::vector<float> host(N);
    int bad = 0;
    CUDA_CHECK(cudaMemcpyAsync(host.data(), losses, N * sizeof(float), cudaMemcpyDeviceToHost,
                               ctx.stream));
    CUDA_CHECK(cudaMemcpyAsync(&bad, ctx.flag, sizeof(int), cudaMemcpyDeviceToHost, ctx.stream));
    CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
    require(bad == 0, "softmax_cross_entropy: a target is outside the vocabulary [0, " +
                          std::to_string(V) + ")");
    double sum = 0.0;
    for (float x : host) sum += x;
    return sum;
}

}  // namespace diloco::cuda
