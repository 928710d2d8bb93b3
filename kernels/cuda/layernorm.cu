// LayerNorm forward (optionally fused with the residual add before it) and backward. One warp
// per row, the row in registers; dweight/dbias summed per block, then across blocks in order.
#include <algorithm>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/ops.h"

namespace diloco::cuda {
namespace {

constexpr float kEps = 1e-5f;
constexpr int kWarps = 8;  // rows in flight per block in the forward pass

// Row values of one lane: chunk k holds columns (k * 32 + lane) * V ... + V - 1, so a warp's
// accesses are contiguous. With inp2 set, x = inp1 + inp2 rounded to storage type (what the
// stored residual holds, exactly as an unfused pair would see it).
template <typename S, int V>
__device__ __forceinline__ void load_x(float (&x)[V], const S* inp1, const S* inp2, size_t at) {
    load<V>(x, inp1 + at);
    if (!inp2) return;
    float b[V];
    load<V>(b, inp2 + at);
#pragma unroll
    for (int k = 0; k < V; k++) x[k] = round_to<S>(x[k] + b[k]);
}

template <typename S, int V>
__device__ __forceinline__ void normalize_store(S* out, const float (&x)[V], float m, float r,
                                                const S* weight, const S* bias, size_t at, int c) {
    float w[V], b[V], y[V];
    load<V>(w, weight + c);
    load<V>(b, bias + c);
#pragma unroll
    for (int k = 0; k < V; k++) y[k] = (x[k] - m) * r * w[k] + b[k];
    store<V>(out + at, y);
}

// One warp per row, the whole row in registers (CHUNKS * V values per lane): the inputs are
// read once and the residual is written, never read back.
template <typename S, int V, int CHUNKS>
__global__ void __launch_bounds__(kWarps * 32)
    layernorm_forward_kernel(S* __restrict__ out, float* __restrict__ mean,
                             float* __restrict__ rstd, S* __restrict__ residual,
                             const S* __restrict__ inp1, const S* __restrict__ inp2,
                             const S* __restrict__ weight, const S* __restrict__ bias, int N,
                             int C) {
    const int lane = threadIdx.x % 32;
    const int row = blockIdx.x * kWarps + threadIdx.x / 32;
    if (row >= N) return;
    const size_t base = static_cast<size_t>(row) * C;
    float x[CHUNKS][V];
    float sum = 0.0f;
#pragma unroll
    for (int k = 0; k < CHUNKS; k++) {
        const int c = (k * 32 + lane) * V;
        if (c >= C) continue;
        load_x<S, V>(x[k], inp1, inp2, base + c);
        if (inp2) store<V>(residual + base + c, x[k]);
#pragma unroll
        for (int j = 0; j < V; j++) sum += x[k][j];
    }
    const float m = warp_sum(sum) / C;
    float var = 0.0f;
#pragma unroll
    for (int k = 0; k < CHUNKS; k++) {
        if ((k * 32 + lane) * V >= C) continue;
#pragma unroll
        for (int j = 0; j < V; j++) var += (x[k][j] - m) * (x[k][j] - m);
    }
    const float r = rsqrtf(warp_sum(var) / C + kEps);
#pragma unroll
    for (int k = 0; k < CHUNKS; k++) {
        const int c = (k * 32 + lane) * V;
        if (c < C) normalize_store<S, V>(out, x[k], m, r, weight, bias, base + c, c);
    }
    if (lane == 0) {
        if (mean) mean[row] = m;
        if (rstd) rstd[row] = r;
    }
}

// Rows too wide for registers: three passes over the inputs, each recomputing x from inp1 and
// inp2 (the residual this kernel writes is never read through the read-only path).
template <typename S, int V>
__global__ void __launch_bounds__(kWarps * 32)
    layernorm_forward_wide_kernel(S* __restrict__ out, float* __restrict__ mean,
                                  float* __restrict__ rstd, S* __restrict__ residual,
                                  const S* __restrict__ inp1, const S* __restrict__ inp2,
                                  const S* __restrict__ weight, const S* __restrict__ bias, int N,
                                  int C) {
    const int lane = threadIdx.x % 32;
    const int row = blockIdx.x * kWarps + threadIdx.x / 32;
    if (row >= N) return;
    const size_t base = static_cast<size_t>(row) * C;
    float sum = 0.0f;
    for (int c = lane * V; c < C; c += 32 * V) {
        float x[V];
        load_x<S, V>(x, inp1, inp2, base + c);
        if (inp2) store<V>(residual + base + c, x);
#pragma unroll
        for (int j = 0; j < V; j++) sum += x[j];
    }
    const float m = warp_sum(sum) / C;
    float var = 0.0f;
    for (int c = lane * V; c < C; c += 32 * V) {
        float x[V];
        load_x<S, V>(x, inp1, inp2, base + c);
#pragma unroll
        for (int j = 0; j < V; j++) var += (x[j] - m) * (x[j] - m);
    }
    const float r = rsqrtf(warp_sum(var) / C + kEps);
    for (int c = lane * V; c < C; c += 32 * V) {
        float x[V];
        load_x<S, V>(x, inp1, inp2, base + c);
        normalize_store<S, V>(out, x, m, r, weight, bias, base + c, c);
    }
    if (lane == 0) {
        if (mean) mean[row] = m;
        if (rstd) rstd[row] = r;
    }
}

// Each warp walks rows with a grid stride, V columns per access; its dweight/dbias sums live in
// its own slice of shared memory (one writer per address), and the block's warps are added in
// warp order.
template <typename S, int V>
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
        for (int c = lane * V; c < C; c += 32 * V) {
            float x[V], w[V], dy[V];
            load<V>(x, inp + base + c);
            load<V>(w, weight + c);
            load<V>(dy, dout + base + c);
#pragma unroll
            for (int j = 0; j < V; j++) {
                const float dnorm = w[j] * dy[j];
                s_dnorm += dnorm;
                s_dnorm_xhat += dnorm * (x[j] - m) * r;
            }
        }
        s_dnorm = warp_sum(s_dnorm) / C;
        s_dnorm_xhat = warp_sum(s_dnorm_xhat) / C;
        for (int c = lane * V; c < C; c += 32 * V) {
            float x[V], w[V], dy[V], dx[V];
            load<V>(x, inp + base + c);
            load<V>(w, weight + c);
            load<V>(dy, dout + base + c);
            load<V>(dx, dinp + base + c);
#pragma unroll
            for (int j = 0; j < V; j++) {
                const float xhat = (x[j] - m) * r;
                dx[j] += (w[j] * dy[j] - s_dnorm - xhat * s_dnorm_xhat) * r;
                dw[c + j] += dy[j] * xhat;
                db[c + j] += dy[j];
            }
            store<V>(dinp + base + c, dx);
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

constexpr int kMaxRegisterValues = 64;  // per lane: C <= 2048 in bf16, 1024 in fp32

template <typename S, int V>
void forward(Context& ctx, void* out, float* mean, float* rstd, void* residual, const void* inp1,
             const void* inp2, const void* weight, const void* bias, int N, int C) {
    auto launch = [&](auto kernel) {
        kernel<<<ceil_div(N, kWarps), kWarps * 32, 0, ctx.stream>>>(
            static_cast<S*>(out), mean, rstd, static_cast<S*>(residual),
            static_cast<const S*>(inp1), static_cast<const S*>(inp2),
            static_cast<const S*>(weight), static_cast<const S*>(bias), N, C);
        CUDA_LAUNCH_CHECK();
    };
    // The fewest chunks (a power of two, for few instantiations) that hold the row.
    const int chunks = ceil_div(C, 32 * V);
    if (chunks <= 1)
        launch(layernorm_forward_kernel<S, V, 1>);
    else if (chunks <= 2)
        launch(layernorm_forward_kernel<S, V, 2>);
    else if (chunks <= 4 && 4 * V <= kMaxRegisterValues)
        launch(layernorm_forward_kernel<S, V, 4>);
    else if (chunks <= 8 && 8 * V <= kMaxRegisterValues)
        launch(layernorm_forward_kernel<S, V, 8>);
    else
        launch(layernorm_forward_wide_kernel<S, V>);
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
    const bool vec = aligned16(dinp) && aligned16(dout) && aligned16(inp) && aligned16(weight) &&
                     C % (16 / ctx.elem()) == 0;
    dispatch_vec(ctx.bf16, vec, [&](auto tag, auto v) {
        using S = typename decltype(tag)::type;
        auto kernel = layernorm_backward_kernel<S, decltype(v)::value>;
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
