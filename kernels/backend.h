// The Backend interface: device memory, copies, and every op of a GPT forward and backward pass.
// model/ is written once against it; kernels/cpu is the fp32 oracle, kernels/cuda the fast twin.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

namespace diloco {

// Conventions shared by every op:
// - "Storage" tensors (parameters, gradients, activations) are void pointers in the backend's
//   storage type: fp32 on the CPU, bf16 or fp32 on CUDA. storage_bytes() gives the element size.
// - Statistics (LayerNorm mean/rstd, per-position losses) and optimizer state are always fp32.
// - Token ids and targets are int32 in device memory.
// - Matrices are row-major. A weight for C inputs and OC outputs is stored [OC, C].
// - Parameter gradients (dweight, dbias, dwte, dwpe) accumulate (+=), so micro-batches add up.
//   Activation gradients are overwritten, except layernorm_backward's dinp, which accumulates so
//   that the residual stream's gradient collects every branch.
class Backend {
public:
    virtual ~Backend() = default;
    virtual std::string name() const = 0;
    virtual size_t storage_bytes() const = 0;
    // What the device calls itself (the GPU's name, the CPU's model name), for peak-rate tables.
    virtual std::string device_name() const = 0;
    // High-water mark of the bytes this backend has allocated (alloc, plus op scratch and
    // workspaces where the backend keeps them), for the run's metrics.
    virtual size_t peak_memory_bytes() const = 0;

    // Memory: alloc returns zeroed memory; copies convert between host fp32 and storage type.
    virtual void* alloc(size_t bytes) = 0;
    virtual void release(void* ptr) = 0;
    virtual void zero(void* ptr, size_t bytes) = 0;
    virtual void upload(void* dst, const float* src, size_t n) = 0;
    virtual void download(float* dst, const void* src, size_t n) = 0;
    virtual void upload_bytes(void* dst, const void* src, size_t bytes) = 0;
    virtual void download_bytes(void* dst, const void* src, size_t bytes) = 0;
    virtual void synchronize() = 0;
    // Page-locks host memory that is copied to and from the device at every outer step, so
    // that those copies run at the link's rate (CUDA); nothing where the device is the host.
    virtual void pin_host(void* ptr, size_t bytes) { (void)ptr, (void)bytes; }
    virtual void unpin_host(void* ptr) { (void)ptr; }

    // out[b,t,:] = wte[tokens[b,t],:] + wpe[t,:]
    virtual void embedding_forward(void* out, const int32_t* tokens, const void* wte,
                                   const void* wpe, int B, int T, int C) = 0;
    // dwte[tokens[b,t],:] += dout[b,t,:]; dwpe[t,:] += sum_b dout[b,t,:]. Deterministic.
    virtual void embedding_backward(void* dwte, void* dwpe, const void* dout,
                                    const int32_t* tokens, int B, int T, int C) = 0;

    // out = (inp - mean) * rstd * weight + bias over the last dim C, for N rows; eps 1e-5.
    virtual void layernorm_forward(void* out, float* mean, float* rstd, const void* inp,
                                   const void* weight, const void* bias, int N, int C) = 0;
    // dinp += d/dinp; dweight += ...; dbias += ...
    virtual void layernorm_backward(void* dinp, void* dweight, void* dbias, const void* dout,
                                    const void* inp, const void* weight, const float* mean,
                                    const float* rstd, int N, int C) = 0;
    // Fused: residual = inp1 + inp2, then out = layernorm(residual).
    virtual void residual_layernorm_forward(void* residual, void* out, float* mean, float* rstd,
                                            const void* inp1, const void* inp2,
                                            const void* weight, const void* bias, int N,
                                            int C) = 0;

    // out[n,:] = inp[n,:] @ weight^T + bias (bias may be null). When pre_gelu is not null the
    // epilogue is fused bias + GELU (tanh approximation): pre_gelu gets the pre-activation and
    // out gets gelu(pre_gelu).
    virtual void matmul_forward(void* out, void* pre_gelu, const void* inp, const void* weight,
                                const void* bias, int N, int C, int OC) = 0;
    // dinp = dout @ weight (overwritten); dweight += dout^T @ inp; dbias += column sums (if
    // not null). When pre_gelu is not null, dout is first multiplied in place by gelu'(pre_gelu).
    virtual void matmul_backward(void* dinp, void* dweight, void* dbias, void* dout,
                                 const void* inp, const void* weight, const void* pre_gelu,
                                 int N, int C, int OC) = 0;

    // Causal multi-head self-attention. qkv is [B,T,3C] (q, k, v, each NH heads of C/NH);
    // out is [B,T,C]. stats is a backend-defined fp32 cache of attention_stats_floats(B,T,NH)
    // floats kept for the backward pass (probabilities on the CPU, log-sum-exp on the GPU).
    virtual size_t attention_stats_floats(int B, int T, int NH) const = 0;
    virtual void attention_forward(void* out, float* stats, const void* qkv, int B, int T, int C,
                                   int NH) = 0;
    // dqkv overwritten.
    virtual void attention_backward(void* dqkv, const void* dout, const void* qkv,
                                    const void* out, const float* stats, int B, int T, int C,
                                    int NH) = 0;

    // out = a + b over n elements (out may alias a or b).
    virtual void residual_forward(void* out, const void* a, const void* b, size_t n) = 0;

    // Fused softmax + cross-entropy over N rows of Vp logits, of which the first V are real.
    // losses[n] = -log softmax(logits[n])[targets[n]]. When grad_scale != 0 the logits are
    // overwritten in place by grad_scale * (softmax - onehot(target)), zero in the padding.
    // Returns the sum of the N losses (on the host, in double).
    virtual double softmax_cross_entropy(void* logits, float* losses, const int32_t* targets,
                                         int N, int V, int Vp, float grad_scale) = 0;

    // Sum of squares of n storage values, accumulated in fp32 or better, returned on the host.
    virtual double sum_squares(const void* x, size_t n) = 0;

    // Gradient accumulation in fp32 where storage is narrower: sum[i] += x[i] (x in storage
    // type), and dst[i] = src[i] rounded to the storage type (to nearest).
    virtual void accumulate_f32(float* sum, const void* x, size_t n) = 0;
    virtual void store_f32(void* dst, const float* src, size_t n) = 0;

    // One AdamW step over n elements (bias-corrected moments, decoupled weight decay).
    // g = grad * grad_scale; m,v updated; the fp32 master value (master, or params itself when
    // master is null and storage is fp32) moves by -lr * (mhat / (sqrt(vhat) + eps) + wd * p);
    // params receives the new master value in storage precision. step counts from 1.
    // offset is the index of params[0] in the caller's whole buffer: a narrower storage type
    // rounds element i stochastically from (seed, step, offset + i), so every element has its
    // own random stream however the caller splits the buffer into calls, and runs or islands
    // with other seeds round differently.
    virtual void adamw_update(void* params, float* master, const void* grads, float* m, float* v,
                              size_t n, float lr, float beta1, float beta2, float eps,
                              float weight_decay, float grad_scale, int step, size_t offset,
                              uint64_t seed) = 0;
};

std::unique_ptr<Backend> make_cpu_backend();

// An owned allocation on a backend, released when it goes out of scope.
class DeviceBuffer {
public:
    DeviceBuffer() = default;
    DeviceBuffer(Backend& backend, size_t bytes)
        : backend_(&backend), ptr_(backend.alloc(bytes)), bytes_(bytes) {}
    DeviceBuffer(DeviceBuffer&& other) noexcept { swap(other); }
    DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
        swap(other);
        return *this;
    }
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    ~DeviceBuffer() {
        if (ptr_) backend_->release(ptr_);
    }
    void* get() const { return ptr_; }
    float* f32() const { return static_cast<float*>(ptr_); }
    int32_t* i32() const { return static_cast<int32_t*>(ptr_); }
    size_t bytes() const { return bytes_; }

private:
    void swap(DeviceBuffer& o) {
        std::swap(backend_, o.backend_);
        std::swap(ptr_, o.ptr_);
        std::swap(bytes_, o.bytes_);
    }
    Backend* backend_ = nullptr;
    void* ptr_ = nullptr;
    size_t bytes_ = 0;
};

// Host memory page-locked by a backend for the life of this object (see Backend::pin_host).
class HostPin {
public:
    HostPin(Backend& backend, void* ptr, size_t bytes) : backend_(&backend), ptr_(ptr) {
        backend.pin_host(ptr, bytes);
    }
    HostPin(HostPin&& other) noexcept
        : backend_(std::exchange(other.backend_, nullptr)),
          ptr_(std::exchange(other.ptr_, nullptr)) {}
    HostPin& operator=(HostPin&&) = delete;
    HostPin(const HostPin&) = delete;
    HostPin& operator=(const HostPin&) = delete;
    ~HostPin() {
        if (ptr_) backend_->unpin_host(ptr_);
    }

private:
    Backend* backend_;
    void* ptr_;
};

// Address of element i of a storage-typed array.
inline void* element(const Backend& backend, void* base, size_t i) {
    return static_cast<char*>(base) + i * backend.storage_bytes();
}

}  // namespace diloco
