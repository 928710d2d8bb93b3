// Token + position embedding, forward and a deterministic backward: positions are sorted by
// token (stable radix sort), then each token's rows are summed in position order by one thread.
#include <cub/device/device_radix_sort.cuh>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/ops.h"

namespace diloco::cuda {
namespace {

template <typename S, int V>
__global__ void embedding_forward_kernel(S* __restrict__ out, const int32_t* __restrict__ tokens,
                                         const S* __restrict__ wte, const S* __restrict__ wpe,
                                         int N, int T, int C) {
    size_t i = (static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x) * V;
    if (i >= static_cast<size_t>(N) * C) return;
    int n = static_cast<int>(i / C), c = static_cast<int>(i % C);
    float a[V], b[V];
    load<V>(a, wte + static_cast<size_t>(tokens[n]) * C + c);
    load<V>(b, wpe + static_cast<size_t>(n % T) * C + c);
#pragma unroll
    for (int k = 0; k < V; k++) a[k] += b[k];
    store<V>(out + i, a);
}

// dwpe[t, c..c+V) += sum over b, in order.
template <typename S, int V>
__global__ void wpe_backward_kernel(S* __restrict__ dwpe, const S* __restrict__ dout, int B, int T,
                                    int C) {
    size_t i = (static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x) * V;
    if (i >= static_cast<size_t>(T) * C) return;
    float acc[V], x[V];
    load<V>(acc, dwpe + i);
    for (int b = 0; b < B; b++) {
        load<V>(x, dout + static_cast<size_t>(b) * T * C + i);
#pragma unroll
        for (int k = 0; k < V; k++) acc[k] += x[k];
    }
    store<V>(dwpe + i, acc);
}

// Block x starts at sorted slot x; only the first slot of each token's run does the work, so
// every dwte row has exactly one writer and a fixed summation order.
template <typename S, int V>
__global__ void wte_backward_kernel(S* __restrict__ dwte, const S* __restrict__ dout,
                                    const int32_t* __restrict__ sorted_tokens,
                                    const int32_t* __restrict__ sorted_pos, int N, int C) {
    int s = blockIdx.x;
    int token = sorted_tokens[s];
    if (s > 0 && sorted_tokens[s - 1] == token) return;
    int c = (blockIdx.y * blockDim.x + threadIdx.x) * V;
    if (c >= C) return;
    float acc[V], x[V];
    S* row = dwte + static_cast<size_t>(token) * C + c;
    load<V>(acc, row);
    for (int r = s; r < N && sorted_tokens[r] == token; r++) {
        load<V>(x, dout + static_cast<size_t>(sorted_pos[r]) * C + c);
#pragma unroll
        for (int k = 0; k < V; k++) acc[k] += x[k];
    }
    store<V>(row, acc);
}

__global__ void iota_kernel(int32_t* out, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = i;
}

template <typename S, int V>
void forward(Context& ctx, void* out, const int32_t* tokens, const void* wte, const void* wpe,
             int N, int T, int C) {
    const int threads = 256;
    size_t work = static_cast<size_t>(N) * C / V;
    embedding_forward_kernel<S, V><<<ceil_div(work, threads), threads, 0, ctx.stream>>>(
        static_cast<S*>(out), tokens, static_cast<const S*>(wte), static_cast<const S*>(wpe), N, T,
        C);
    CUDA_LAUNCH_CHECK();
}

template <typename S, int V>
void backward(Context& ctx, void* dwte, void* dwpe, const void* dout, const int32_t* tokens, int B,
              int T, int C) {
    const int N = B * T, threads = 256;
    const S* d = static_cast<const S*>(dout);
    if (dwpe) {
        wpe_backward_kernel<S, V>
            <<<ceil_div(static_cast<size_t>(T) * C / V, threads), threads, 0, ctx.stream>>>(
                static_cast<S*>(dwpe), d, B, T, C);
        CUDA_LAUNCH_CHECK();
    }
    if (!dwte) return;
    // Scratch: positions, sorted tokens, sorted positions, then the sort's temporary storage.
    size_t temp_bytes = 0;
    CUDA_CHECK(
        cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, tokens, static_cast<int32_t*>(nullptr),
                                        static_cast<const int32_t*>(nullptr),
                                        static_cast<int32_t*>(nullptr), N, 0, 32, ctx.stream));
    size_t ints = (static_cast<size_t>(N) + 63) / 64 * 64;
    auto* base = static_cast<int32_t*>(ctx.scratch.get(3 * ints * 4 + temp_bytes, ctx.stream));
    int32_t *pos = base, *sorted_tokens = base + ints, *sorted_pos = base + 2 * ints;
    iota_kernel<<<ceil_div(N, threads), threads, 0, ctx.stream>>>(pos, N);
    CUDA_LAUNCH_CHECK();
    CUDA_CHECK(cub::DeviceRadixSort::SortPairs(base + 3 * ints, temp_bytes, tokens, sorted_tokens,
                                               pos, sorted_pos, N, 0, 32, ctx.stream));
    int per_row = (C + V - 1) / V;
    int block = per_row < 256 ? (per_row + 31) / 32 * 32 : 256;
    dim3 grid(N, ceil_div(per_row, block));
    wte_backward_kernel<S, V>
        <<<grid, block, 0, ctx.stream>>>(static_cast<S*>(dwte), d, sorted_tokens, sorted_pos, N, C);
    CUDA_LAUNCH_CHECK();
}

}  // namespace

void embedding_forward(Context& ctx, void* out, const int32_t* tokens, const void* wte,
                       const void* wpe, int B, int T, int C) {
    if (B * T == 0 || C == 0) return;
    bool vec = aligned16(out) && aligned16(wte) && aligned16(wpe) && C % (16 / ctx.elem()) == 0;
    dispatch_vec(ctx.bf16, vec, [&](auto tag, auto v) {
        forward<typename decltype(tag)::type, decltype(v)::value>(ctx, out, tokens, wte, wpe, B * T,
                                                                  T, C);
    });
}

void embedding_backward(Context& ctx, void* dwte, void* dwpe, const void* dout,
                        const int32_t* tokens, int B, int T, int C) {
    if (B * T == 0 || C == 0) return;
    bool vec = (!dwte || aligned16(dwte)) && (!dwpe || aligned16(dwpe)) && aligned16(dout) &&
               C % (16 / ctx.elem()) == 0;
    dispatch_vec(ctx.bf16, vec, [&](auto tag, auto v) {
        backward<typename decltype(tag)::type, decltype(v)::value>(ctx, dwte, dwpe, dout, tokens, B,
                                                                   T, C);
    });
}

}  // namespace diloco::cuda
