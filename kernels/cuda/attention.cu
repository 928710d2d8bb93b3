// Causal self-attention: fused flash-style kernels (online softmax, never a T x T matrix), a plain
// path (cuBLAS batched products + softmax kernels), and the choice of path (cuDNN's included).
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/ops.h"

namespace diloco::cuda {
namespace {

constexpr int kThreads = 128;  // per flash block
constexpr int kTile = 32;      // rows of K/V (forward, dQ) or Q/dO (dK, dV) per shared tile

// Geometry of the flash kernels for a head size padded up to D: each row (a query, or a key in
// the dK/dV kernel) belongs to kGroup = D/32 adjacent threads holding 32 dims each.
template <int D>
struct Flash {
    static constexpr int kGroup = D / 32;
    static constexpr int kRows = kThreads / kGroup;
    // Shared rows put each 32-dim part 36 floats apart, so the parts a group reads at once
    // start in different banks.
    static constexpr int kStride = kGroup * 36;
    __device__ static int at(int row, int part) { return row * kStride + part * 36; }
};

// Rows [row0, row0 + kTile) of one head (base: row 0, dim 0; ld: row stride) as fp32, zeros
// past T and past the head size.
template <typename S, int D>
__device__ void load_tile(float* tile, const S* base, size_t ld, int row0, int T, int hs) {
    for (int idx = threadIdx.x; idx < kTile * D; idx += kThreads) {
        const int r = idx / D, d = idx % D;
        float x = 0.0f;
        if (row0 + r < T && d < hs) x = to_float(base[static_cast<size_t>(row0 + r) * ld + d]);
        tile[Flash<D>::at(r, d / 32) + d % 32] = x;
    }
}

template <typename S>
__device__ void load_part(float (&x)[32], const S* p, int dims, bool valid) {
#pragma unroll
    for (int u = 0; u < 32; u++) x[u] = valid && u < dims ? to_float(p[u]) : 0.0f;
}

template <typename S>
__device__ void store_part(S* p, const float (&x)[32], float factor, int dims) {
#pragma unroll
    for (int u = 0; u < 32; u++)
        if (u < dims) p[u] = from_float<S>(x[u] * factor);
}

__device__ __forceinline__ float dot32(const float (&x)[32], const float* row) {
    float s = 0.0f;
#pragma unroll
    for (int u = 0; u < 32; u += 4) {
        float4 r = *reinterpret_cast<const float4*>(row + u);
        s = fmaf(x[u], r.x, s);
        s = fmaf(x[u + 1], r.y, s);
        s = fmaf(x[u + 2], r.z, s);
        s = fmaf(x[u + 3], r.w, s);
    }
    return s;
}

__device__ __forceinline__ void axpy32(float (&acc)[32], float a, const float* row) {
#pragma unroll
    for (int u = 0; u < 32; u += 4) {
        float4 r = *reinterpret_cast<const float4*>(row + u);
        acc[u] = fmaf(a, r.x, acc[u]);
        acc[u + 1] = fmaf(a, r.y, acc[u + 1]);
        acc[u + 2] = fmaf(a, r.z, acc[u + 2]);
        acc[u + 3] = fmaf(a, r.w, acc[u + 3]);
    }
}

// Sum over a row's group of adjacent lanes; every lane of the group gets the same bits.
template <int G>
__device__ __forceinline__ float group_sum(float x) {
#pragma unroll
    for (int off = G / 2; off > 0; off /= 2) x += __shfl_xor_sync(0xffffffffu, x, off);
    return x;
}

// Where one (batch, head)'s slices start: q inside qkv [B,T,3C] (k at +C, v at +2C), and the
// head's columns of a [B,T,width] tensor (out, dout, dqkv).
struct Head {
    int b, h, hs;
    size_t ld;  // 3C
    __device__ Head(int bh, int NH, int C)
        : b(bh / NH), h(bh % NH), hs(C / NH), ld(3 * static_cast<size_t>(C)) {}
    template <typename P>
    __device__ P* cols(P* base, int T, int width) const {
        return base + static_cast<size_t>(b) * T * width + static_cast<size_t>(h) * hs;
    }
};

// One block: kRows queries of one (batch, head), walking K/V tiles with an online softmax.
// Scores are kept in log2 units (q pre-scaled by log2(e)/sqrt(hs)) so exp2f does the work.
template <typename S, int D>
__global__ void __launch_bounds__(kThreads)
    flash_forward_kernel(S* __restrict__ out, float* __restrict__ lse, const S* __restrict__ qkv,
                         int B, int T, int C, int NH) {
    using F = Flash<D>;
    __shared__ __align__(16) float ks[kTile * F::kStride];
    __shared__ __align__(16) float vs[kTile * F::kStride];
    const int BH = B * NH, qblocks = (T + F::kRows - 1) / F::kRows;
    const int qb = qblocks - 1 - static_cast<int>(blockIdx.x / BH);  // longest rows first
    const int bh = blockIdx.x % BH;
    const Head hd(bh, NH, C);
    const int part = threadIdx.x % F::kGroup, i = qb * F::kRows + threadIdx.x / F::kGroup;
    const int dims = hd.hs - part * 32;
    const bool active = i < T;
    const S* qbase = hd.cols(qkv, T, 3 * C);

    float q[32], o[32];
    load_part(q, qbase + static_cast<size_t>(i) * hd.ld + part * 32, dims, active);
    const float scale = kLog2e / sqrtf(static_cast<float>(hd.hs));
#pragma unroll
    for (int u = 0; u < 32; u++) q[u] *= scale, o[u] = 0.0f;
    float m = -INFINITY, l = 0.0f;

    const int kend = min(T, (qb + 1) * F::kRows);
    for (int k0 = 0; k0 < kend; k0 += kTile) {
        __syncthreads();
        load_tile<S, D>(ks, qbase + C, hd.ld, k0, T, hd.hs);
        load_tile<S, D>(vs, qbase + 2 * C, hd.ld, k0, T, hd.hs);
        __syncthreads();
        // Inactive rows compute too (on zeros): the group shuffles need every lane.
        float s[kTile];
        float tile_max = -INFINITY;
#pragma unroll
        for (int j = 0; j < kTile; j++) {
            float x = group_sum<F::kGroup>(dot32(q, ks + F::at(j, part)));
            s[j] = k0 + j <= i ? x : -INFINITY;
            tile_max = fmaxf(tile_max, s[j]);
        }
        // Key 0 is in the first tile and visible to every row, so m is finite from then on.
        const float m_new = fmaxf(m, tile_max);
        const float corr = exp2f(m - m_new);
        l *= corr;
#pragma unroll
        for (int u = 0; u < 32; u++) o[u] *= corr;
#pragma unroll
        for (int j = 0; j < kTile; j++) {
            const float p = exp2f(s[j] - m_new);
            l += p;
            axpy32(o, p, vs + F::at(j, part));
        }
        m = m_new;
    }
    if (!active) return;
    store_part(hd.cols(out, T, C) + static_cast<size_t>(i) * C + part * 32, o, 1.0f / l, dims);
    if (part == 0) lse[static_cast<size_t>(bh) * T + i] = (m + log2f(l)) * kLn2;
}

// delta[b,h,t] = dO . O over the head's dims: the softmax backward's row term.
template <typename S>
__global__ void attention_delta_kernel(float* __restrict__ delta, const S* __restrict__ dout,
                                       const S* __restrict__ out, int B, int T, int C, int NH) {
    const size_t w = (static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
    const int lane = threadIdx.x % 32;
    if (w >= static_cast<size_t>(B) * T * NH) return;
    const int h = static_cast<int>(w % NH), hs = C / NH;
    const size_t bt = w / NH;
    const int t = static_cast<int>(bt % T), b = static_cast<int>(bt / T);
    const size_t base = bt * C + static_cast<size_t>(h) * hs;
    float s = 0.0f;
    for (int d = lane; d < hs; d += 32) s += to_float(dout[base + d]) * to_float(out[base + d]);
    s = warp_sum(s);
    if (lane == 0) delta[(static_cast<size_t>(b) * NH + h) * T + t] = s;
}

// dK and dV for kRows keys of one head: each thread keeps its key's k, v and gradients in
// registers and walks the query tiles that can see it. No atomics: dQ has its own kernel.
template <typename S, int D>
__global__ void __launch_bounds__(kThreads)
    flash_backward_kv_kernel(S* __restrict__ dqkv, const S* __restrict__ dout,
                             const S* __restrict__ qkv, const float* __restrict__ lse,
                             const float* __restrict__ delta, int B, int T, int C, int NH) {
    using F = Flash<D>;
    __shared__ __align__(16) float qs[kTile * F::kStride];
    __shared__ __align__(16) float dos[kTile * F::kStride];
    __shared__ float lse_s[kTile], delta_s[kTile];
    const int BH = B * NH;
    const int kb = static_cast<int>(blockIdx.x / BH);  // first keys (most queries) first
    const int bh = blockIdx.x % BH;
    const Head hd(bh, NH, C);
    const int part = threadIdx.x % F::kGroup, j = kb * F::kRows + threadIdx.x / F::kGroup;
    const int dims = hd.hs - part * 32;
    const bool active = j < T;
    const S* qbase = hd.cols(qkv, T, 3 * C);
    const S* dobase = hd.cols(dout, T, C);

    float k[32], v[32], dk[32], dv[32];
    load_part(k, qbase + C + static_cast<size_t>(j) * hd.ld + part * 32, dims, active);
    load_part(v, qbase + 2 * C + static_cast<size_t>(j) * hd.ld + part * 32, dims, active);
#pragma unroll
    for (int u = 0; u < 32; u++) dk[u] = 0.0f, dv[u] = 0.0f;
    const float scale = 1.0f / sqrtf(static_cast<float>(hd.hs)), scale2 = scale * kLog2e;

    for (int i0 = kb * F::kRows; i0 < T; i0 += kTile) {
        __syncthreads();
        load_tile<S, D>(qs, qbase, hd.ld, i0, T, hd.hs);
        load_tile<S, D>(dos, dobase, C, i0, T, hd.hs);
        if (threadIdx.x < kTile) {
            const int i = i0 + threadIdx.x;
            const size_t r = static_cast<size_t>(bh) * T + i;
            lse_s[threadIdx.x] = i < T ? lse[r] * kLog2e : 0.0f;
            delta_s[threadIdx.x] = i < T ? delta[r] : 0.0f;
        }
        __syncthreads();
        for (int ii = 0; ii < kTile; ii++) {
            const int i = i0 + ii;
            const float* qrow = qs + F::at(ii, part);
            const float* dorow = dos + F::at(ii, part);
            const float s = group_sum<F::kGroup>(dot32(k, qrow)) * scale2;
            const float p = j <= i && i < T ? exp2f(s - lse_s[ii]) : 0.0f;
            const float dp = group_sum<F::kGroup>(dot32(v, dorow));
            const float ds = p * (dp - delta_s[ii]);
            axpy32(dv, p, dorow);
            axpy32(dk, ds, qrow);
        }
    }
    if (!active) return;
    S* row = hd.cols(dqkv, T, 3 * C) + static_cast<size_t>(j) * hd.ld + part * 32;
    store_part(row + C, dk, scale, dims);
    store_part(row + 2 * C, dv, 1.0f, dims);
}

// dQ for kRows queries of one head, walking the K/V tiles they can see.
template <typename S, int D>
__global__ void __launch_bounds__(kThreads)
    flash_backward_q_kernel(S* __restrict__ dqkv, const S* __restrict__ dout,
                            const S* __restrict__ qkv, const float* __restrict__ lse,
                            const float* __restrict__ delta, int B, int T, int C, int NH) {
    using F = Flash<D>;
    __shared__ __align__(16) float ks[kTile * F::kStride];
    __shared__ __align__(16) float vs[kTile * F::kStride];
    const int BH = B * NH, qblocks = (T + F::kRows - 1) / F::kRows;
    const int qb = qblocks - 1 - static_cast<int>(blockIdx.x / BH);
    const int bh = blockIdx.x % BH;
    const Head hd(bh, NH, C);
    const int part = threadIdx.x % F::kGroup, i = qb * F::kRows + threadIdx.x / F::kGroup;
    const int dims = hd.hs - part * 32;
    const bool active = i < T;
    const S* qbase = hd.cols(qkv, T, 3 * C);

    float q[32], dO[32], dq[32];
    load_part(q, qbase + static_cast<size_t>(i) * hd.ld + part * 32, dims, active);
    load_part(dO, hd.cols(dout, T, C) + static_cast<size_t>(i) * C + part * 32, dims, active);
#pragma unroll
    for (int u = 0; u < 32; u++) dq[u] = 0.0f;
    const size_t r = static_cast<size_t>(bh) * T + i;
    const float lse2 = active ? lse[r] * kLog2e : 0.0f, dlt = active ? delta[r] : 0.0f;
    const float scale = 1.0f / sqrtf(static_cast<float>(hd.hs)), scale2 = scale * kLog2e;

    const int kend = min(T, (qb + 1) * F::kRows);
    for (int k0 = 0; k0 < kend; k0 += kTile) {
        __syncthreads();
        load_tile<S, D>(ks, qbase + C, hd.ld, k0, T, hd.hs);
        load_tile<S, D>(vs, qbase + 2 * C, hd.ld, k0, T, hd.hs);
        __syncthreads();
        for (int jj = 0; jj < kTile; jj++) {
            const float* krow = ks + F::at(jj, part);
            const float s = group_sum<F::kGroup>(dot32(q, krow)) * scale2;
            const float p = k0 + jj <= i ? exp2f(s - lse2) : 0.0f;
            const float dp = group_sum<F::kGroup>(dot32(dO, vs + F::at(jj, part)));
            axpy32(dq, p * (dp - dlt), krow);
        }
    }
    if (!active) return;
    store_part(hd.cols(dqkv, T, 3 * C) + static_cast<size_t>(i) * hd.ld + part * 32, dq, scale,
               dims);
}

// Plain path, one warp per score row (h, i) of one batch element: probabilities (zero above
// the diagonal, in storage type for the next product) and the row's log-sum-exp.
template <typename S>
__global__ void softmax_forward_kernel(S* __restrict__ probs, float* __restrict__ lse,
                                       const float* __restrict__ scores, int rows, int T) {
    const int r = (blockIdx.x * blockDim.x + threadIdx.x) / 32, lane = threadIdx.x % 32;
    if (r >= rows) return;
    const int i = r % T;
    const float* s = scores + static_cast<size_t>(r) * T;
    float m = -INFINITY;
    for (int j = lane; j <= i; j += 32) m = fmaxf(m, s[j]);
    m = warp_max(m);
    float sum = 0.0f;
    for (int j = lane; j <= i; j += 32) sum += exp2f((s[j] - m) * kLog2e);
    const float l = m + logf(warp_sum(sum));
    for (int j = lane; j < T; j += 32)
        probs[static_cast<size_t>(r) * T + j] =
            from_float<S>(j <= i ? exp2f((s[j] - l) * kLog2e) : 0.0f);
    if (lane == 0) lse[r] = l;
}

// Plain path backward, elementwise over [rows, T]: P from the recomputed scores and the saved
// log-sum-exp, and dS = P * (dP - delta) * scale (the scale of S = scale * QK^T folded in).
template <typename S>
__global__ void softmax_backward_kernel(S* __restrict__ probs, S* __restrict__ dscores,
                                        const float* __restrict__ scores,
                                        const float* __restrict__ dprobs,
                                        const float* __restrict__ lse,
                                        const float* __restrict__ delta, int rows, int T,
                                        float scale) {
    const size_t idx = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx >= static_cast<size_t>(rows) * T) return;
    const int r = static_cast<int>(idx / T), j = static_cast<int>(idx % T), i = r % T;
    const float p = j <= i ? exp2f((scores[idx] - lse[r]) * kLog2e) : 0.0f;
    probs[idx] = from_float<S>(p);
    dscores[idx] = from_float<S>(p * (dprobs[idx] - delta[r]) * scale);
}

// Storage-typed views for the plain path's cuBLAS calls.
struct Views {
    Context& ctx;
    const void* at(const void* p, size_t elems) const {
        return static_cast<const char*>(p) + elems * ctx.elem();
    }
    void* at(void* p, size_t elems) const { return static_cast<char*>(p) + elems * ctx.elem(); }
};

// Column-major strided-batched product over the NH heads of one batch element.
void gemm_heads(Context& ctx, bool ta, bool tb, int m, int n, int k, float alpha, const void* A,
                int lda, long long sa, const void* B, int ldb, long long sb, void* Cm, bool c_fp32,
                int ldc, long long sc, int heads) {
    const cudaDataType_t type = ctx.bf16 ? CUDA_R_16BF : CUDA_R_32F;
    const float beta = 0.0f;
    CUBLAS_CHECK(cublasGemmStridedBatchedEx(
        ctx.blas, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N, m, n, k, &alpha,
        A, type, lda, sa, B, type, ldb, sb, &beta, Cm, c_fp32 ? CUDA_R_32F : type, ldc, sc, heads,
        CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

size_t round256(size_t bytes) { return (bytes + 255) / 256 * 256; }

// scores[h] (column-major [T_k, T_q], i.e. row-major [q][k]) = scale * K_h^T Q_h.
void scores_product(Context& ctx, float* scores, const void* qkv_b, int T, int C, int NH,
                    float scale) {
    Views v{ctx};
    const int hs = C / NH;
    gemm_heads(ctx, true, false, T, T, hs, scale, v.at(qkv_b, C), 3 * C, hs, qkv_b, 3 * C, hs,
               scores, true, T, static_cast<long long>(T) * T, NH);
}

void plain_forward(Context& ctx, void* out, float* lse, const void* qkv, int B, int T, int C,
                   int NH) {
    Views v{ctx};
    const int hs = C / NH, rows = NH * T;
    const size_t tt = static_cast<size_t>(T) * T;
    const size_t scores_bytes = round256(NH * tt * sizeof(float));
    char* buf =
        static_cast<char*>(ctx.scratch.get(scores_bytes + NH * tt * ctx.elem(), ctx.stream));
    auto* scores = reinterpret_cast<float*>(buf);
    void* probs = buf + scores_bytes;
    const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
    for (int b = 0; b < B; b++) {
        const void* qkv_b = v.at(qkv, static_cast<size_t>(b) * T * 3 * C);
        scores_product(ctx, scores, qkv_b, T, C, NH, scale);
        dispatch(ctx.bf16, [&](auto tag) {
            using S = typename decltype(tag)::type;
            softmax_forward_kernel<S>
                <<<ceil_div(static_cast<size_t>(rows) * 32, 256), 256, 0, ctx.stream>>>(
                    static_cast<S*>(probs), lse + static_cast<size_t>(b) * rows, scores, rows, T);
            CUDA_LAUNCH_CHECK();
        });
        // out_h (column-major [hs, T_q]) = V_h [hs, T_k] * P^T.
        gemm_heads(ctx, false, false, hs, T, T, 1.0f, v.at(qkv_b, 2 * C), 3 * C, hs, probs, T, tt,
                   v.at(out, static_cast<size_t>(b) * T * C), false, C, hs, NH);
    }
}

// Scratch for plain_backward: scores and dP in fp32, P and dS in storage type, per head.
size_t plain_backward_bytes(const Context& ctx, int T, int NH) {
    const size_t tt = static_cast<size_t>(T) * T;
    return 2 * round256(NH * tt * sizeof(float)) + 2 * round256(NH * tt * ctx.elem());
}

void plain_backward(Context& ctx, char* buf, void* dqkv, const void* dout, const void* qkv,
                    const float* lse, const float* delta, int B, int T, int C, int NH) {
    Views v{ctx};
    const int hs = C / NH, rows = NH * T;
    const size_t tt = static_cast<size_t>(T) * T;
    const size_t f32 = round256(NH * tt * sizeof(float)), st = round256(NH * tt * ctx.elem());
    auto* scores = reinterpret_cast<float*>(buf);
    auto* dprobs = reinterpret_cast<float*>(buf + f32);
    void* probs = buf + 2 * f32;
    void* dscores = buf + 2 * f32 + st;
    const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
    for (int b = 0; b < B; b++) {
        const void* qkv_b = v.at(qkv, static_cast<size_t>(b) * T * 3 * C);
        const void* dout_b = v.at(dout, static_cast<size_t>(b) * T * C);
        void* dqkv_b = v.at(dqkv, static_cast<size_t>(b) * T * 3 * C);
        scores_product(ctx, scores, qkv_b, T, C, NH, scale);
        // dP[i][j] = dO_i . v_j, laid out like the scores.
        gemm_heads(ctx, true, false, T, T, hs, 1.0f, v.at(qkv_b, 2 * C), 3 * C, hs, dout_b, C, hs,
                   dprobs, true, T, tt, NH);
        dispatch(ctx.bf16, [&](auto tag) {
            using S = typename decltype(tag)::type;
            softmax_backward_kernel<S>
                <<<ceil_div(static_cast<size_t>(rows) * T, 256), 256, 0, ctx.stream>>>(
                    static_cast<S*>(probs), static_cast<S*>(dscores), scores, dprobs,
                    lse + static_cast<size_t>(b) * rows, delta + static_cast<size_t>(b) * rows,
                    rows, T, scale);
            CUDA_LAUNCH_CHECK();
        });
        // dV_h [hs, T_k] = dO_h [hs, T_q] * P (column-major [T_k, T_q], transposed).
        gemm_heads(ctx, false, true, hs, T, T, 1.0f, dout_b, C, hs, probs, T, tt,
                   v.at(dqkv_b, 2 * C), false, 3 * C, hs, NH);
        // dQ_h [hs, T_q] = K_h [hs, T_k] * dS (column-major [T_k, T_q]).
        gemm_heads(ctx, false, false, hs, T, T, 1.0f, v.at(qkv_b, C), 3 * C, hs, dscores, T, tt,
                   dqkv_b, false, 3 * C, hs, NH);
        // dK_h [hs, T_k] = Q_h [hs, T_q] * dS^T.
        gemm_heads(ctx, false, true, hs, T, T, 1.0f, qkv_b, 3 * C, hs, dscores, T, tt,
                   v.at(dqkv_b, C), false, 3 * C, hs, NH);
    }
}

template <typename F>
void dispatch_head(int hs, F&& f) {
    if (hs <= 32)
        f(std::integral_constant<int, 32>{});
    else if (hs <= 64)
        f(std::integral_constant<int, 64>{});
    else
        f(std::integral_constant<int, 128>{});
}

constexpr int kMaxFlashHead = 128;

void check_shape(int B, int T, int C, int NH) {
    require(B > 0 && T > 0 && NH > 0 && C % NH == 0,
            "attention: impossible shape B=" + std::to_string(B) + " T=" + std::to_string(T) +
                " C=" + std::to_string(C) + " NH=" + std::to_string(NH));
}

// Why cuDNN cannot run attention at all here ("" when it can, where it accepts the shape).
std::string cudnn_unavailable([[maybe_unused]] const Context& ctx) {
#ifdef DILOCO_HAVE_CUDNN
    if (!ctx.bf16) return "cuDNN attention needs bf16 storage (this run stores fp32)";
    if (ctx.compute_major < 8)
        return "cuDNN attention needs compute capability 8.0 or newer (this GPU has " +
               std::to_string(ctx.compute_major) + ".x)";
    return "";
#else
    return "this build has no cuDNN attention (the cudnn-frontend headers were not found when it "
           "was configured)";
#endif
}

// The path that runs. cudnn and automatic take cuDNN for every shape it accepts; a shape it
// refuses runs on flash, forward and backward alike (cudnn_attention_refusal notes it once).
// Asking for cuDNN where it cannot run at all is an error that says why; automatic then says
// once per backend that flash runs. Flash hands heads over 128 to the plain path.
// B and T reach only the cuDNN check, absent from a build without cuDNN.
AttentionPath resolve(Context& ctx, AttentionPath path, [[maybe_unused]] int B,
                      [[maybe_unused]] int T, int C, int NH) {
    if (path == AttentionPath::automatic || path == AttentionPath::cudnn) {
        const std::string unavailable = cudnn_unavailable(ctx);
#ifdef DILOCO_HAVE_CUDNN
        if (unavailable.empty() && cudnn_attention_refusal(ctx, B, T, C, NH).empty())
            return AttentionPath::cudnn;
#endif
        if (!unavailable.empty()) {
            require(path == AttentionPath::automatic, "--attention cudnn: " + unavailable);
            if (!ctx.noted_attention_fallback)
                std::fprintf(stderr, "note: attention runs on our flash kernels, not cuDNN: %s\n",
                             unavailable.c_str());
            ctx.noted_attention_fallback = true;
        }
        path = AttentionPath::flash;
    }
    return path == AttentionPath::flash && C / NH > kMaxFlashHead ? AttentionPath::plain : path;
}

}  // namespace

void attention_forward(Context& ctx, void* out, float* lse, const void* qkv, int B, int T, int C,
                       int NH, AttentionPath path) {
    check_shape(B, T, C, NH);
    const int hs = C / NH;
    path = resolve(ctx, path, B, T, C, NH);
#ifdef DILOCO_HAVE_CUDNN
    if (path == AttentionPath::cudnn)
        return cudnn_attention_forward(ctx, out, lse, qkv, B, T, C, NH);
#endif
    if (path == AttentionPath::plain) return plain_forward(ctx, out, lse, qkv, B, T, C, NH);
    dispatch(ctx.bf16, [&](auto tag) {
        using S = typename decltype(tag)::type;
        dispatch_head(hs, [&](auto d) {
            constexpr int D = decltype(d)::value;
            const unsigned blocks = ceil_div(T, Flash<D>::kRows) * static_cast<unsigned>(B * NH);
            flash_forward_kernel<S, D><<<blocks, kThreads, 0, ctx.stream>>>(
                static_cast<S*>(out), lse, static_cast<const S*>(qkv), B, T, C, NH);
            CUDA_LAUNCH_CHECK();
        });
    });
}

void attention_backward(Context& ctx, void* dqkv, const void* dout, const void* qkv,
                        const void* out, const float* lse, int B, int T, int C, int NH,
                        AttentionPath path) {
    check_shape(B, T, C, NH);
    const int hs = C / NH;
    path = resolve(ctx, path, B, T, C, NH);
#ifdef DILOCO_HAVE_CUDNN
    if (path == AttentionPath::cudnn)
        return cudnn_attention_backward(ctx, dqkv, dout, qkv, out, lse, B, T, C, NH);
#endif
    const size_t rows = static_cast<size_t>(B) * NH * T;
    const bool plain = path == AttentionPath::plain;
    // Scratch: delta, then (plain path) the score-sized buffers.
    const size_t delta_bytes = round256(rows * sizeof(float));
    char* buf = static_cast<char*>(
        ctx.scratch.get(delta_bytes + (plain ? plain_backward_bytes(ctx, T, NH) : 0), ctx.stream));
    auto* delta = reinterpret_cast<float*>(buf);
    dispatch(ctx.bf16, [&](auto tag) {
        using S = typename decltype(tag)::type;
        attention_delta_kernel<S><<<ceil_div(rows * 32, 256), 256, 0, ctx.stream>>>(
            delta, static_cast<const S*>(dout), static_cast<const S*>(out), B, T, C, NH);
        CUDA_LAUNCH_CHECK();
        if (plain) {
            plain_backward(ctx, buf + delta_bytes, dqkv, dout, qkv, lse, delta, B, T, C, NH);
            return;
        }
        dispatch_head(hs, [&](auto d) {
            constexpr int D = decltype(d)::value;
            const unsigned blocks = ceil_div(T, Flash<D>::kRows) * static_cast<unsigned>(B * NH);
            auto args = [&](auto kernel) {
                kernel<<<blocks, kThreads, 0, ctx.stream>>>(
                    static_cast<S*>(dqkv), static_cast<const S*>(dout), static_cast<const S*>(qkv),
                    lse, delta, B, T, C, NH);
                CUDA_LAUNCH_CHECK();
            };
            args(flash_backward_kv_kernel<S, D>);
            args(flash_backward_q_kernel<S, D>);
        });
    });
}

}  // namespace diloco::cuda
