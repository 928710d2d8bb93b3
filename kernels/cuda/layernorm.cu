// LayerNorm forward (optionally fused with the residual add before it) and backward. One warp
// per row; dweight/dbias are summed per block, then across blocks in a fixed order (no atomics).
#include <algorithm>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/ops.h"

namespace diloco::cuda {
namespace {

constexpr float kEps = 1e-5f;
constexpr int kWarps = 8;  // rows in flight per block in the forward pass

// With inp2 set, x = inp1 + inp2 is first stored to `residual` (rounded to storage type) and
// the statistics are taken of the stored values, exactly as an unfused pair would see them.
template <typename S, int V>
__global__ void __launch_bounds__(kWarps * 32)
    layernorm_forward_kernel(S* __restrict__ out, float* __restrict__ mean,
                             float* __restrict__ rstd, S* __restrict__ residual,
                             const S* __restrict__ inp1, const S* __restrict__ inp2,
                             const S* __restrict__ weight, const S* __restrict__ bias, int N,
                             int C) {
    int lane = threadIdx.x % 32;
    int row = blockIdx.x * kWarps + threadIdx.x / 32;
    if (row >= N) return;
    const size_t base = static_cast<size_t>(row) * C;
    const S* x = inp1 + base;
    float sum = 0.0f;
    for (int c = lane * V; c < C; c += 32 * V) {
        float a[V];
        load<V>(a, x + c);
        if (inp2) {
            float b[V];
            load<V>(b, inp2 + base + c);
#pragma unroll
            for (int k = 0; k < V; k++) a[k] = round_to<S>(a[k] + b[k]);
            store<V>(residual + base + c, a);
        }
#pragma unroll
        for (int k = 0; k < V; k++) sum += a[k];
    }
    if (inp2) x = residual + base;  // each lane reads back only what it wrote itself
    const float m = warp_sum(sum) / C;
    float var = 0.0f;
    for (int c = lane * V; c < C; c += 32 * V) {
        float a[V];
        load<V>(a, x + c);
#pragma unroll
        for (int k = 0; k < V; k++) var += (a[k] - m) * (a[k] - m);
    }
    const float r = rsqrtf(warp_sum(var) / C + kEps);
    for (int c = lane * V; c < C; c += 32 * V) {
        float a[V], w[V], b[V];
        load<V>(a, x + c);
        load<V>(w, weight + c);
        load<V>(b, bias + c);
#pragma unroll
        for (int k = 0; k < V; k++) a[k] = (a[k] - m) * r * w[k] + b[k];
        store<V>(out + base + c, a);
    }
    if (lane == 0) {
        if (mean) mean[row] = m;
        if (rstd) rstd[row] = r;
    }
}

// Each warp walks rows with a grid stride; its dweight/dbias sums live in its own slice of
// shared memory (one writer per address), and the block's warps are added in warp order.
template <typename S>
__global__ void layernorm_backward_kernel(S* __restrict__ dinp, float* __restrict__ partial,
                                          const S* __restrict__ dout, const S* __restrict__ inp,
                                          const S* __restrict__ weight,
                                          const float* __restrict__ mean,
                                          const float* __restrict__ rstd, int N, int C) {
    extern __shared__ float acc[];  // [warps][2C]: dweight sums, then dbias sums
    const int warps = blockDim.x / 32, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    for (int i = threadIdx.x; i < warps * 2 * C; i += blockDim.x) acc[i] = 0.0f;
    __syncthreads();
    float* dw = acc + static_cast<size_t>(warp) * 2 * C;
    float* db = dw + C;
    for (int row = blockIdx.x * warps + warp; row < N; row += gridDim.x * warps) {
        const size_t base = static_cast<size_t>(row) * C;
        const float m = mean[row], r = rstd[row];
        float s_dnorm = 0.0f, s_dnorm_xhat = 0.0f;
        for (int c = lane; c < C; c += 32) {
            float xhat = (to_float(inp[base + c]) - m) * r;
            float dnorm = to_float(weight[c]) * to_float(dout[base + c]);
            s_dnorm += dnorm;
            s_dnorm_xhat += dnorm * xhat;
        }
        s_dnorm = warp_sum(s_dnorm) / C;
        s_dnorm_xhat = warp_sum(s_dnorm_xhat) / C;
        for (int c = lane; c < C; c += 32) {
            float xhat = (to_float(inp[base + c]) - m) * r;
            float dy = to_float(dout[base + c]);
            float dx = (to_float(weight[c]) * dy - s_dnorm - xhat * s_dnorm_xhat) * r;
            dinp[base + c] = from_float<S>(to_float(dinp[base + c]) + dx);
            dw[c] += dy * xhat;
            db[c] += dy;
        }
    }
    __syncthreads();
    for (int c = threadIdx.x; c < 2 * C; c += blockDim.x) {
        float s = 0.0f;
        for (int w = 0; w < warps; w++) s += acc[static_cast<size_t>(w) * 2 * C + c];
        partial[static_cast<size_t>(blockIdx.x) * 2 * C + c] = s;
    }
}

// Column c of [blocks][2C] partials, summed in block order and added to dweight or dbias.
template <typename S>
__global__ void layernorm_param_grad_kernel(S* __restrict__ dweight, S* __restrict__ dbias,
                                            const float* __restrict__ partial, int blocks, int C) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= 2 * C) return;
    float s = 0.0f;
    for (int b = 0; b < blocks; b++) s += partial[static_cast<size_t>(b) * 2 * C + c];
    S* dst = c < C ? (dweight ? dweight + c : nullptr) : (dbias ? dbias + (c - C) : nullptr);
    if (dst) *dst = from_float<S>(to_float(*dst) + s);
}

template <typename S, int V>
void forward(Context& ctx, void* out, float* mean, float* rstd, void* residual, const void* inp1,
             const void* inp2, const void* weight, const void* bias, int N, int C) {
    layernorm_forward_kernel<S, V><<<ceil_div(N, kWarps), kWarps * 32, 0, ctx.stream>>>(
        static_cast<S*>(out), mean, rstd, static_cast<S*>(residual), static_cast<const S*>(inp1),
        static_cast<const S*>(inp2), static_cast<const S*>(weight), static_cast<const S*>(bias), N,
        C);
    CUDA_LAUNCH_CHECK();
}

void forward_any(Context& ctx, void* out, float* mean, float* rstd, void* residual,
                 const void* inp1, const void* inp2, const void* weight, const void* bias, int N,
                 int C) {
    if (N == 0 || C == 0) return;
    bool vec = aligned16(out) && aligned16(inp1) && aligned16(weight) && aligned16(bias) &&
               (!inp2 || (aligned16(inp2) && aligned16(residual))) && C % (16 / ctx.elem()) == 0;
    dispatch_vec(ctx.bf16, vec, [&](auto tag, auto v) {
        forward<typename decltype(tag)::type, decltype(v)::value>(ctx, out, mean, rstd, residual,
                                                                  inp1, inp2, weight, bias, N, C);
    });
}

}  // namespace

void layernorm_forward(Context& ctx, void* out, float* mean, float* rstd, const void* inp,
                       const void* weight, const void* bias, int N, int C) {
    forward_any(ctx, out, mean, rstd, nullptr, inp, nullptr, weight, bias, N, C);
}

void residual_layernorm_forward(Context& ctx, void* residual, void* out, float* mean, float* rstd,
                                const void* inp1, const void* inp2, const void* weight,
                                const void* bias, int N, int C) {
    forward_any(ctx, out, mean, rstd, residual, inp1, inp2, weight, bias, N, C);
}

void layernorm_backward(Context& ctx, void* dinp, void* dweight, void* dbias, const void* dout,
                        const void* inp, const void* weight, const float* mean, const float* rstd,
                        int N, int C) {
    if (N == 0 || C == 0) return;
    // As many warps (up to 8) as fit their 2C-float slices in the shared memory a block may use.
    const size_t slice = 2 * static_cast<size_t>(C) * sizeof(float);
    int warps = static_cast<int>(std::min<size_t>(8, ctx.max_smem_per_block / slice));
    require(warps >= 1, "layernorm_backward: C = " + std::to_string(C) +
                            " needs more shared memory than a block has");
    const size_t smem = warps * slice;
    const int blocks = static_cast<int>(std::min<size_t>(ceil_div(N, warps), 2 * ctx.sm_count));
    auto* partial = static_cast<float*>(
        ctx.scratch.get(static_cast<size_t>(blocks) * 2 * C * sizeof(float), ctx.stream));
    dispatch(ctx.bf16, [&](auto tag) {
        using S = typename decltype(tag)::type;
        auto kernel = layernorm_backward_kernel<S>;
        CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(smem)));
        kernel<<<blocks, warps * 32, smem, ctx.stream>>>(
            static_cast<S*>(dinp), partial, static_cast<const S*>(dout), static_cast<const S*>(inp),
            static_cast<const S*>(weight), mean, rstd, N, C);
        CUDA_LAUNCH_CHECK();
        layernorm_param_grad_kernel<S><<<ceil_div(2 * C, 256), 256, 0, ctx.stream>>>(
            static_cast<S*>(dweight), static_cast<S*>(dbias), partial, blocks, C);
        CUDA_LAUNCH_CHECK();
    });
}

}  // namespace diloco::cuda
