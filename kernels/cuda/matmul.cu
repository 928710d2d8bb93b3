// Matmuls through cuBLASLt (bias and bias+GELU fused in the epilogue, plans cached per shape),
// with a plain cuBLAS fallback; the bias gradient and GELU backward are our deterministic kernels.
#include <algorithm>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/ops.h"

namespace diloco::cuda {
namespace {

// Column-major D[m,n] = op(A)[m,k] * op(B)[k,n] + beta * D, then the epilogue. Our row-major
// [rows, cols] tensors are column-major [cols, rows], which is how every call below reads them.
struct Gemm {
    bool ta, tb;
    int m, n, k;
    const void* A;
    int lda;
    const void* B;
    int ldb;
    void* D;
    int ldd;
    float beta;
    cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
    const void* bias = nullptr;
    void* aux = nullptr;  // GELU input (pre-activation), ld = m
};

int64_t alignment(const void* p) {
    auto a = reinterpret_cast<uintptr_t>(p);
    int64_t al = 256;
    while (al > 1 && a % al != 0) al /= 2;
    return al;
}

cudaDataType_t storage_type(const Context& ctx) { return ctx.bf16 ? CUDA_R_16BF : CUDA_R_32F; }

template <typename T>
void set_desc(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr, const T& value) {
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, attr, &value, sizeof(value)));
}

template <typename T>
void set_pref(cublasLtMatmulPreference_t pref, cublasLtMatmulPreferenceAttributes_t attr, T value) {
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, attr, &value, sizeof(value)));
}

// The heuristic reads pointer alignments (bias and aux included), so they are part of the key.
MatmulPlan& plan_for(Context& ctx, const Gemm& g) {
    MatmulKey key{g.ta,
                  g.tb,
                  g.m,
                  g.n,
                  g.k,
                  g.lda,
                  g.ldb,
                  g.ldd,
                  g.beta != 0.f,
                  g.epilogue,
                  alignment(g.A),
                  alignment(g.B),
                  alignment(g.D),
                  alignment(g.bias),
                  alignment(g.aux),
                  ctx.bf16};
    auto found = ctx.plans.find(key);
    if (found != ctx.plans.end()) return found->second;

    MatmulPlan p;
    const cudaDataType_t type = storage_type(ctx);
    CUBLAS_CHECK(cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    set_desc(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, g.ta ? CUBLAS_OP_T : CUBLAS_OP_N);
    set_desc(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, g.tb ? CUBLAS_OP_T : CUBLAS_OP_N);
    set_desc(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, g.epilogue);
    if (g.bias) set_desc(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, g.bias);
    if (g.aux) {
        set_desc(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, g.aux);
        set_desc(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, static_cast<int64_t>(g.m));
    }
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.a, type, g.ta ? g.k : g.m, g.ta ? g.m : g.k, g.lda));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.b, type, g.tb ? g.n : g.k, g.tb ? g.k : g.n, g.ldb));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.d, type, g.m, g.n, g.ldd));

    cublasLtMatmulPreference_t pref;
    CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    set_pref(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, uint64_t{ctx.workspace_bytes});
    set_pref(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, uint32_t(alignment(g.A)));
    set_pref(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, uint32_t(alignment(g.B)));
    set_pref(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, uint32_t(alignment(g.D)));
    set_pref(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, uint32_t(alignment(g.D)));
    cublasLtMatmulHeuristicResult_t result{};
    int count = 0;
    // Any failure here means "no algorithm for this request" (an epilogue or alignment it cannot
    // serve); the caller then takes the unfused path, whose own calls are checked.
    const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(ctx.lt, p.desc, p.a, p.b, p.d, p.d,
                                                             pref, 1, &result, &count);
    CUBLAS_CHECK(cublasLtMatmulPreferenceDestroy(pref));
    p.found = st == CUBLAS_STATUS_SUCCESS && count > 0 && result.state == CUBLAS_STATUS_SUCCESS;
    p.algo = result.algo;
    return ctx.plans.emplace(key, p).first->second;
}

// Returns false when cuBLASLt has no algorithm for this product.
bool run_lt(Context& ctx, const Gemm& g) {
    MatmulPlan& p = plan_for(ctx, g);
    if (!p.found) return false;
    if (g.bias) set_desc(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, g.bias);
    if (g.aux) set_desc(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, g.aux);
    const float alpha = 1.0f;
    CUBLAS_CHECK(cublasLtMatmul(ctx.lt, p.desc, &alpha, g.A, p.a, g.B, p.b, &g.beta, g.D, p.d, g.D,
                                p.d, &p.algo, ctx.workspace, ctx.workspace_bytes, ctx.stream));
    return true;
}

// A product without epilogue: cuBLASLt, else cublasGemmEx (any shape, any alignment).
void run(Context& ctx, const Gemm& g) {
    if (run_lt(ctx, g)) return;
    const cudaDataType_t type = storage_type(ctx);
    const float alpha = 1.0f;
    CUBLAS_CHECK(cublasGemmEx(ctx.blas, g.ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                              g.tb ? CUBLAS_OP_T : CUBLAS_OP_N, g.m, g.n, g.k, &alpha, g.A, type,
                              g.lda, g.B, type, g.ldb, &g.beta, g.D, type, g.ldd,
                              CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

// The unfused epilogue: src (+ bias per column); with pre set, pre = that and out = gelu(it).
template <typename S>
__global__ void bias_gelu_kernel(S* out, S* pre, const S* __restrict__ bias, size_t n, int OC) {
    size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float x = to_float(pre ? pre[i] : out[i]);
    if (bias) x += to_float(bias[i % OC]);
    if (pre) {
        S stored = from_float<S>(x);
        pre[i] = stored;
        x = gelu(to_float(stored));
    }
    out[i] = from_float<S>(x);
}

constexpr int kColTile = 32, kRowLanes = 8;

// Block (32, 8) owns 32 columns of one chunk of rows. With pre set, dout *= gelu'(pre) in
// place first; with partial set, the column sums of the (rounded) result go to
// partial[chunk][col] in a fixed order.
template <typename S>
__global__ void __launch_bounds__(kColTile* kRowLanes)
    bias_grad_kernel(float* __restrict__ partial, S* __restrict__ dout, const S* __restrict__ pre,
                     int N, int OC, int rows_per_chunk) {
    __shared__ float sums[kRowLanes][kColTile];
    const int col = blockIdx.x * kColTile + threadIdx.x;
    const int r0 = blockIdx.y * rows_per_chunk, r1 = min(N, r0 + rows_per_chunk);
    float acc = 0.0f;
    if (col < OC) {
        for (int r = r0 + threadIdx.y; r < r1; r += kRowLanes) {
            const size_t i = static_cast<size_t>(r) * OC + col;
            float g = to_float(dout[i]);
            if (pre) {
                S stored = from_float<S>(g * gelu_grad(to_float(pre[i])));
                dout[i] = stored;
                g = to_float(stored);
            }
            acc += g;
        }
    }
    if (!partial) return;
    sums[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && col < OC) {
        float s = 0.0f;
        for (int k = 0; k < kRowLanes; k++) s += sums[k][threadIdx.x];
        partial[static_cast<size_t>(blockIdx.y) * OC + col] = s;
    }
}

template <typename S>
__global__ void bias_grad_reduce_kernel(S* __restrict__ dbias, const float* __restrict__ partial,
                                        int chunks, int OC) {
    int col = blockIdx.x * blockDim.x + threadIdx.x;
    if (col >= OC) return;
    float s = 0.0f;
    for (int k = 0; k < chunks; k++) s += partial[static_cast<size_t>(k) * OC + col];
    dbias[col] = from_float<S>(to_float(dbias[col]) + s);
}

void bias_gelu(Context& ctx, void* out, void* pre, const void* bias, int N, int OC) {
    const size_t n = static_cast<size_t>(N) * OC;
    dispatch(ctx.bf16, [&](auto tag) {
        using S = typename decltype(tag)::type;
        bias_gelu_kernel<S><<<ceil_div(n, 256), 256, 0, ctx.stream>>>(
            static_cast<S*>(out), static_cast<S*>(pre), static_cast<const S*>(bias), n, OC);
        CUDA_LAUNCH_CHECK();
    });
}

// dout *= gelu'(pre) when pre is set; dbias += column sums of dout when dbias is set.
void bias_backward(Context& ctx, void* dbias, void* dout, const void* pre, int N, int OC) {
    const int col_blocks = static_cast<int>(ceil_div(OC, kColTile));
    const int target_chunks = std::max(1, 4 * ctx.sm_count / col_blocks);
    const int chunks = std::min(target_chunks, static_cast<int>(ceil_div(N, kRowLanes)));
    const int rows_per_chunk = static_cast<int>(ceil_div(N, chunks));
    float* partial = nullptr;
    if (dbias) {
        partial = static_cast<float*>(
            ctx.scratch.get(static_cast<size_t>(chunks) * OC * sizeof(float), ctx.stream));
    }
    dispatch(ctx.bf16, [&](auto tag) {
        using S = typename decltype(tag)::type;
        dim3 grid(col_blocks, chunks), block(kColTile, kRowLanes);
        bias_grad_kernel<S><<<grid, block, 0, ctx.stream>>>(
            partial, static_cast<S*>(dout), static_cast<const S*>(pre), N, OC, rows_per_chunk);
        CUDA_LAUNCH_CHECK();
        if (!dbias) return;
        bias_grad_reduce_kernel<S><<<ceil_div(OC, 256), 256, 0, ctx.stream>>>(
            static_cast<S*>(dbias), partial, chunks, OC);
        CUDA_LAUNCH_CHECK();
    });
}

}  // namespace

void matmul_forward(Context& ctx, void* out, void* pre_gelu, const void* inp, const void* weight,
                    const void* bias, int N, int C, int OC) {
    if (N == 0 || OC == 0) return;
    // out^T[OC,N] = W[OC,C] (stored [C,OC] column-major, so transposed) * inp^T[C,N].
    Gemm g{true, false, OC, N, C, weight, C, inp, C, out, OC, 0.0f};
    const bool gelu = pre_gelu != nullptr;
    // The GELU epilogue only in bf16: fp32 mode keeps our exact-tanh GELU, matching the oracle.
    const bool fuse =
        (!bias || aligned16(bias)) && (!gelu || (ctx.bf16 && OC % 8 == 0 && aligned16(pre_gelu)));
    if (fuse && (bias || gelu)) {
        g.epilogue = gelu ? (bias ? CUBLASLT_EPILOGUE_GELU_AUX_BIAS : CUBLASLT_EPILOGUE_GELU_AUX)
                          : CUBLASLT_EPILOGUE_BIAS;
        g.bias = bias;
        g.aux = pre_gelu;
        if (run_lt(ctx, g)) return;
        g.epilogue = CUBLASLT_EPILOGUE_DEFAULT;
        g.bias = nullptr;
        g.aux = nullptr;
    }
    if (gelu) g.D = pre_gelu;
    run(ctx, g);
    if (bias || gelu) bias_gelu(ctx, out, pre_gelu, bias, N, OC);
}

void matmul_backward(Context& ctx, void* dinp, void* dweight, void* dbias, void* dout,
                     const void* inp, const void* weight, const void* pre_gelu, int N, int C,
                     int OC) {
    if (N == 0 || OC == 0) return;
    if (pre_gelu || dbias) bias_backward(ctx, dbias, dout, pre_gelu, N, OC);
    // dinp^T[C,N] = W (column-major [C,OC]) * dout^T[OC,N]; overwritten.
    if (dinp) run(ctx, Gemm{false, false, C, N, OC, weight, C, dout, OC, dinp, C, 0.0f});
    // dW (column-major [C,OC]) += inp^T[C,N] * dout[N,OC].
    if (dweight) run(ctx, Gemm{false, true, C, OC, N, inp, C, dout, OC, dweight, C, 1.0f});
}

}  // namespace diloco::cuda
