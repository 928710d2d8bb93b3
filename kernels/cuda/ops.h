// The launchers of the CUDA op families (one .cu file each) and the context they share: stream,
// cuBLAS(Lt) handles, matmul workspace and plans, scratch memory. cuda_backend.cu calls them.
#pragma once

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "kernels/cuda/cuda_backend.h"

namespace diloco::cuda {

// One growing device buffer for temporaries that live within one op (partial sums, sort
// buffers, attention scores). Ops run in stream order, so one buffer serves them all.
class Scratch {
public:
    Scratch() = default;
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;
    ~Scratch();
    // At least `bytes` bytes, 256-byte aligned; previous contents are not kept.
    void* get(size_t bytes, cudaStream_t stream);
    size_t bytes() const { return bytes_; }  // it only grows: its size is its high-water mark

private:
    void* ptr_ = nullptr;
    size_t bytes_ = 0;
};

// A cached cuBLASLt configuration for one matmul shape and epilogue.
struct MatmulPlan {
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
    cublasLtMatmulAlgo_t algo{};
    bool found = false;  // false: no cuBLASLt algorithm, use the cuBLAS fallback
};
using MatmulKey = std::array<int64_t, 16>;

struct CudnnAttention;  // cuDNN's handle and built graphs (kernels/cuda/attention_cudnn.cpp)

struct Context {
    Context(bool bf16, int device);
    ~Context();
    Context(const Context&) = delete;
    Context& operator=(const Context&) = delete;

    bool bf16;
    int device;
    int sm_count = 0;
    int compute_major = 0;          // compute capability, major version
    size_t max_smem_per_block = 0;  // opt-in limit for dynamic shared memory
    cudaStream_t stream = nullptr;
    cublasHandle_t blas = nullptr;
    cublasLtHandle_t lt = nullptr;
    void* workspace = nullptr;  // cuBLASLt workspace, allocated once
    size_t workspace_bytes = 0;
    std::map<MatmulKey, MatmulPlan> plans;
    Scratch scratch;
    int* flag = nullptr;  // one device int for kernels to report bad input (cross-entropy)
    std::shared_ptr<CudnnAttention> cudnn;  // made on first use; null in a build without cuDNN
    bool noted_attention_fallback = false;  // automatic attention said once why cuDNN cannot run
    size_t elem() const { return bf16 ? 2 : 4; }

private:
    void release_handles() noexcept;  // everything above that is not a member object
};

// Storage-typed pointers are void*: bf16 or fp32 as ctx.bf16 says. Semantics as in
// kernels/backend.h.
void embedding_forward(Context& ctx, void* out, const int32_t* tokens, const void* wte,
                       const void* wpe, int B, int T, int C);
void embedding_backward(Context& ctx, void* dwte, void* dwpe, const void* dout,
                        const int32_t* tokens, int B, int T, int C);

void layernorm_forward(Context& ctx, void* out, float* mean, float* rstd, const void* inp,
                       const void* weight, const void* bias, int N, int C);
void residual_layernorm_forward(Context& ctx, void* residual, void* out, float* mean, float* rstd,
                                const void* inp1, const void* inp2, const void* weight,
                                const void* bias, int N, int C);
void layernorm_backward(Context& ctx, void* dinp, void* dweight, void* dbias, const void* dout,
                        const void* inp, const void* weight, const float* mean, const float* rstd,
                        int N, int C);

void matmul_forward(Context& ctx, void* out, void* pre_gelu, const void* inp, const void* weight,
                    const void* bias, int N, int C, int OC);
void matmul_backward(Context& ctx, void* dinp, void* dweight, void* dbias, void* dout,
                     const void* inp, const void* weight, const void* pre_gelu, int N, int C,
                     int OC);

// Attention keeps the log-sum-exp of every score row as its stats: B*NH*T floats, natural log.
// cudnn: cuDNN's fused kernels (bf16, sm_80+). flash: our fused kernels (head size up to 128;
// larger heads take the plain path). plain: cuBLAS batched products around softmax kernels,
// T x T scores in scratch. cudnn and automatic: cuDNN for each shape it accepts
// (cudnn_attention_refusal empty), flash for the others, both directions alike; where cuDNN
// cannot run at all (fp32, an old GPU, a build without it), cudnn is an error, automatic flash.
void attention_forward(Context& ctx, void* out, float* lse, const void* qkv, int B, int T, int C,
                       int NH, AttentionPath path);
void attention_backward(Context& ctx, void* dqkv, const void* dout, const void* qkv,
                        const void* out, const float* lse, int B, int T, int C, int NH,
                        AttentionPath path);

// The cuDNN path (kernels/cuda/attention_cudnn.cpp, in builds with cuDNN, bf16, sm_80+): why
// cuDNN refuses this shape at graph validation, build or planning, decided once per shape and
// noted once on stderr ("" when it accepts: both directions' graphs are then built and kept);
// and the two directions, for accepted shapes only.
std::string cudnn_attention_refusal(Context& ctx, int B, int T, int C, int NH);
void cudnn_attention_forward(Context& ctx, void* out, float* lse, const void* qkv, int B, int T,
                             int C, int NH);
void cudnn_attention_backward(Context& ctx, void* dqkv, const void* dout, const void* qkv,
                              const void* out, const float* lse, int B, int T, int C, int NH);

void residual_forward(Context& ctx, void* out, const void* a, const void* b, size_t n);

double softmax_cross_entropy(Context& ctx, void* logits, float* losses, const int32_t* targets,
                             int N, int V, int Vp, float grad_scale);

double sum_squares(Context& ctx, const void* x, size_t n);

void accumulate_f32(Context& ctx, float* sum, const void* x, size_t n);
void store_f32(Context& ctx, void* dst, const float* src, size_t n);

void adamw_update(Context& ctx, void* params, float* master, const void* grads, float* m, float* v,
                  size_t n, float lr, float beta1, float beta2, float eps, float weight_decay,
                  float grad_scale, int step, size_t offset, uint64_t seed);

}  // namespace diloco::cuda
