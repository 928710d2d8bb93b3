// The CUDA Backend: memory and copies (fp32 <-> storage conversion on the host), and every op
// forwarded to its launcher in kernels/cuda/<family>.cu; also the shared Context and Scratch.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <vector>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/ops.h"
#include "kernels/memory_meter.h"

namespace diloco {
namespace cuda {
namespace {

constexpr size_t kWorkspaceBytes = size_t{32} << 20;  // cuBLASLt's suggestion for Hopper

uint16_t bf16_bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, sizeof(u));
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest, ties to even
    return static_cast<uint16_t>(u >> 16);
}

float bf16_value(uint16_t bits) {
    uint32_t u = static_cast<uint32_t>(bits) << 16;
    float f;
    std::memcpy(&f, &u, sizeof(f));
    return f;
}

// Cleanup paths (destructors, release) must not throw: they report and go on.
void warn_if(cudaError_t err, const char* what) {
    if (err != cudaSuccess)
        std::fprintf(stderr, "warning: %s: %s\n", what, cudaGetErrorString(err));
}

}  // namespace

Scratch::~Scratch() { warn_if(cudaFree(ptr_), "freeing CUDA scratch"); }

void* Scratch::get(size_t bytes, cudaStream_t stream) {
    if (bytes <= bytes_ && ptr_) return ptr_;
    // Kernels queued earlier may still read the old buffer.
    CUDA_CHECK(cudaStreamSynchronize(stream));
    CUDA_CHECK(cudaFree(ptr_));
    ptr_ = nullptr;
    bytes_ = 0;
    const size_t rounded = (std::max<size_t>(bytes, 1) + (size_t{1} << 20) - 1) >> 20 << 20;
    CUDA_CHECK(cudaMalloc(&ptr_, rounded));
    bytes_ = rounded;
    return ptr_;
}

Context::Context(bool bf16_storage, int device_index) : bf16(bf16_storage), device(device_index) {
    const int count = cuda_device_count();
    require(device >= 0 && device < count, "CUDA device " + std::to_string(device) +
                                               " requested, " + std::to_string(count) +
                                               " available");
    CUDA_CHECK(cudaSetDevice(device));
    CUDA_CHECK(cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, device));
    CUDA_CHECK(cudaDeviceGetAttribute(&compute_major, cudaDevAttrComputeCapabilityMajor, device));
    int smem = 0;
    CUDA_CHECK(cudaDeviceGetAttribute(&smem, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    max_smem_per_block = static_cast<size_t>(smem);
    try {
        CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
        CUBLAS_CHECK(cublasCreate(&blas));
        CUBLAS_CHECK(cublasSetStream(blas, stream));
        // Default math: fp32 products stay fp32 (no TF32); bf16 products use tensor cores.
        CUBLAS_CHECK(cublasSetMathMode(blas, CUBLAS_DEFAULT_MATH));
        CUBLAS_CHECK(cublasLtCreate(&lt));
        CUDA_CHECK(cudaMalloc(&workspace, kWorkspaceBytes));
        workspace_bytes = kWorkspaceBytes;
        CUDA_CHECK(cudaMalloc(&flag, sizeof(int)));
    } catch (...) {
        release_handles();
        throw;
    }
}

Context::~Context() { release_handles(); }

void Context::release_handles() noexcept {
    if (stream) warn_if(cudaStreamSynchronize(stream), "synchronizing before teardown");
    cudnn.reset();  // its handle is bound to the stream
    for (auto& [key, plan] : plans) {
        cublasLtMatrixLayoutDestroy(plan.a);
        cublasLtMatrixLayoutDestroy(plan.b);
        cublasLtMatrixLayoutDestroy(plan.d);
        cublasLtMatmulDescDestroy(plan.desc);
    }
    plans.clear();
    warn_if(cudaFree(flag), "freeing the flag");
    warn_if(cudaFree(workspace), "freeing the matmul workspace");
    flag = nullptr;
    workspace = nullptr;
    if (lt) cublasLtDestroy(lt);
    if (blas) cublasDestroy(blas);
    lt = nullptr;
    blas = nullptr;
    if (stream) warn_if(cudaStreamDestroy(stream), "destroying the stream");
    stream = nullptr;
}

}  // namespace cuda

namespace {

class CudaBackend final : public Backend {
public:
    explicit CudaBackend(const CudaOptions& options)
        : ctx_(options.bf16, options.device), attention_(options.attention) {
        cudaDeviceProp prop{};
        CUDA_CHECK(cudaGetDeviceProperties(&prop, ctx_.device));
        device_name_ = prop.name;
    }

    std::string name() const override {
        static const char* paths[] = {"", " cudnn-attention", " flash-attention",
                                      " plain-attention"};
        return "cuda:" + std::to_string(ctx_.device) + (ctx_.bf16 ? " bf16" : " fp32") +
               paths[static_cast<int>(attention_)];
    }
    size_t storage_bytes() const override { return ctx_.elem(); }
    std::string device_name() const override { return device_name_; }
    // The buffers' high-water mark plus the scratch (which only grows) and the matmul
    // workspace: an upper bound that is exact when the scratch peaks while the buffers do.
    size_t peak_memory_bytes() const override {
        return memory_.peak() + ctx_.scratch.bytes() + ctx_.workspace_bytes;
    }
    cudaStream_t stream() const { return ctx_.stream; }

    void* alloc(size_t bytes) override {
        if (bytes == 0) return nullptr;
        void* p = nullptr;
        cudaError_t err = cudaMalloc(&p, bytes);
        if (err != cudaSuccess) {
            throw Error("CUDA: cannot allocate " + std::to_string(bytes) + " bytes on device " +
                        std::to_string(ctx_.device) + ": " + cudaGetErrorString(err));
        }
        CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, ctx_.stream));
        CUDA_CHECK(cudaStreamSynchronize(ctx_.stream));
        memory_.allocated(p, bytes);
        return p;
    }
    void release(void* ptr) override {
        if (!ptr) return;
        memory_.released(ptr);
        cuda::warn_if(cudaStreamSynchronize(ctx_.stream), "synchronizing before cudaFree");
        cuda::warn_if(cudaFree(ptr), "cudaFree");
    }
    void zero(void* ptr, size_t bytes) override {
        if (bytes) CUDA_CHECK(cudaMemsetAsync(ptr, 0, bytes, ctx_.stream));
    }
    void upload(void* dst, const float* src, size_t n) override {
        if (!ctx_.bf16) return upload_bytes(dst, src, n * sizeof(float));
        std::vector<uint16_t> bits(n);
        for (size_t i = 0; i < n; i++) bits[i] = cuda::bf16_bits(src[i]);
        upload_bytes(dst, bits.data(), n * sizeof(uint16_t));
    }
    void download(float* dst, const void* src, size_t n) override {
        if (!ctx_.bf16) return download_bytes(dst, src, n * sizeof(float));
        std::vector<uint16_t> bits(n);
        download_bytes(bits.data(), src, n * sizeof(uint16_t));
        for (size_t i = 0; i < n; i++) dst[i] = cuda::bf16_value(bits[i]);
    }
    void upload_bytes(void* dst, const void* src, size_t bytes) override {
        if (!bytes) return;
        CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, ctx_.stream));
        CUDA_CHECK(cudaStreamSynchronize(ctx_.stream));
    }
    void download_bytes(void* dst, const void* src, size_t bytes) override {
        if (!bytes) return;
        CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, ctx_.stream));
        CUDA_CHECK(cudaStreamSynchronize(ctx_.stream));
    }
    void synchronize() override { CUDA_CHECK(cudaStreamSynchronize(ctx_.stream)); }
    void pin_host(void* ptr, size_t bytes) override {
        if (bytes) CUDA_CHECK(cudaHostRegister(ptr, bytes, cudaHostRegisterDefault));
    }
    void unpin_host(void* ptr) override {
        cuda::warn_if(cudaHostUnregister(ptr), "cudaHostUnregister");
    }

    void embedding_forward(void* out, const int32_t* tokens, const void* wte, const void* wpe,
                           int B, int T, int C) override {
        cuda::embedding_forward(ctx_, out, tokens, wte, wpe, B, T, C);
    }
    void embedding_backward(void* dwte, void* dwpe, const void* dout, const int32_t* tokens, int B,
                            int T, int C) override {
        cuda::embedding_backward(ctx_, dwte, dwpe, dout, tokens, B, T, C);
    }
    void layernorm_forward(void* out, float* mean, float* rstd, const void* inp, const void* weight,
                           const void* bias, int N, int C) override {
        cuda::layernorm_forward(ctx_, out, mean, rstd, inp, weight, bias, N, C);
    }
    void layernorm_backward(void* dinp, void* dweight, void* dbias, const void* dout,
                            const void* inp, const void* weight, const float* mean,
                            const float* rstd, int N, int C) override {
        cuda::layernorm_backward(ctx_, dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
    }
    void residual_layernorm_forward(void* residual, void* out, float* mean, float* rstd,
                                    const void* inp1, const void* inp2, const void* weight,
                                    const void* bias, int N, int C) override {
        cuda::residual_layernorm_forward(ctx_, residual, out, mean, rstd, inp1, inp2, weight, bias,
                                         N, C);
    }
    void matmul_forward(void* out, void* pre_gelu, const void* inp, const void* weight,
                        const void* bias, int N, int C, int OC) override {
        cuda::matmul_forward(ctx_, out, pre_gelu, inp, weight, bias, N, C, OC);
    }
    void matmul_backward(void* dinp, void* dweight, void* dbias, void* dout, const void* inp,
                         const void* weight, const void* pre_gelu, int N, int C, int OC) override {
        cuda::matmul_backward(ctx_, dinp, dweight, dbias, dout, inp, weight, pre_gelu, N, C, OC);
    }
    size_t attention_stats_floats(int B, int T, int NH) const override {
        return static_cast<size_t>(B) * NH * T;
    }
    void attention_forward(void* out, float* stats, const void* qkv, int B, int T, int C,
                           int NH) override {
        cuda::attention_forward(ctx_, out, stats, qkv, B, T, C, NH, attention_);
    }
    void attention_backward(void* dqkv, const void* dout, const void* qkv, const void* out,
                            const float* stats, int B, int T, int C, int NH) override {
        cuda::attention_backward(ctx_, dqkv, dout, qkv, out, stats, B, T, C, NH, attention_);
    }
    void residual_forward(void* out, const void* a, const void* b, size_t n) override {
        cuda::residual_forward(ctx_, out, a, b, n);
    }
    double softmax_cross_entropy(void* logits, float* losses, const int32_t* targets, int N, int V,
                                 int Vp, float grad_scale) override {
        return cuda::softmax_cross_entropy(ctx_, logits, losses, targets, N, V, Vp, grad_scale);
    }
    double sum_squares(const void* x, size_t n) override { return cuda::sum_squares(ctx_, x, n); }
    void accumulate_f32(float* sum, const void* x, size_t n) override {
        cuda::accumulate_f32(ctx_, sum, x, n);
    }
    void store_f32(void* dst, const float* src, size_t n) override {
        cuda::store_f32(ctx_, dst, src, n);
    }
    void adamw_update(void* params, float* master, const void* grads, float* m, float* v, size_t n,
                      float lr, float beta1, float beta2, float eps, float weight_decay,
                      float grad_scale, int step, size_t offset, uint64_t seed) override {
        cuda::adamw_update(ctx_, params, master, grads, m, v, n, lr, beta1, beta2, eps,
                           weight_decay, grad_scale, step, offset, seed);
    }

private:
    cuda::Context ctx_;
    AttentionPath attention_;
    std::string device_name_;
    MemoryMeter memory_;
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(const CudaOptions& options) {
    return std::make_unique<CudaBackend>(options);
}

bool cuda_has_cudnn_attention() {
#ifdef DILOCO_HAVE_CUDNN
    return true;
#else
    return false;
#endif
}

int cuda_device_count() {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();  // clear the sticky "no driver / no device" error
        return 0;
    }
    return n;
}

cudaStream_t cuda_stream(Backend& backend) {
    auto* cuda = dynamic_cast<CudaBackend*>(&backend);
    require(cuda != nullptr, "backend " + backend.name() + " is not a CUDA backend");
    return cuda->stream();
}

}  // namespace diloco
