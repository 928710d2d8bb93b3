// The fp32 CPU backend: host memory and the cpu:: op templates instantiated for float.
// It is the oracle every other backend is tested against, and a CPU island's engine.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "kernels/backend.h"
#include "kernels/cpu/adamw.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/crossentropy.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/layernorm.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/norm.h"
#include "kernels/cpu/residual.h"
#include "kernels/memory_meter.h"
#include "util/error.h"

namespace diloco {

namespace {

constexpr size_t kAlignment = 64;  // a cache line, and wide enough for any SIMD load
constexpr size_t kZeroChunk = 1 << 20;

float* f32(void* p) { return static_cast<float*>(p); }
const float* f32(const void* p) { return static_cast<const float*>(p); }

// The processor's model name from /proc/cpuinfo ("cpu" where it gives none, as on some ARM).
std::string cpu_model_name() {
    std::ifstream info("/proc/cpuinfo");
    for (std::string line; std::getline(info, line);) {
        if (!line.starts_with("model name")) continue;
        const size_t colon = line.find(':');
        if (colon != std::string::npos && colon + 2 <= line.size()) return line.substr(colon + 2);
    }
    return "cpu";
}

class CpuBackend : public Backend {
public:
    std::string name() const override { return "cpu"; }
    size_t storage_bytes() const override { return sizeof(float); }
    std::string device_name() const override { return cpu_model_name(); }
    size_t peak_memory_bytes() const override { return memory_.peak(); }

    // aligned_alloc wants a non-zero multiple of the alignment; zero bytes still get a distinct
    // pointer, so release() needs no special case.
    void* alloc(size_t bytes) override {
        const bool fits = bytes <= SIZE_MAX - kAlignment;
        const size_t rounded = std::max<size_t>(1, (bytes + kAlignment - 1) / kAlignment) *
                               kAlignment;
        void* p = fits ? std::aligned_alloc(kAlignment, rounded) : nullptr;
        require(p != nullptr, "cpu backend: cannot allocate " + std::to_string(bytes) + " bytes");
        std::memset(p, 0, rounded);
        memory_.allocated(p, rounded);
        return p;
    }
    void release(void* ptr) override {
        memory_.released(ptr);
        std::free(ptr);
    }
    // The gradients are zeroed every step: on all threads, which memset alone would not use.
    void zero(void* ptr, size_t bytes) override {
        char* p = static_cast<char*>(ptr);
#pragma omp parallel for schedule(static)
        for (size_t c = 0; c < bytes; c += kZeroChunk)
            std::memset(p + c, 0, std::min(kZeroChunk, bytes - c));
    }
    void upload(void* dst, const float* src, size_t n) override {
        std::memcpy(dst, src, n * sizeof(float));
    }
    void download(float* dst, const void* src, size_t n) override {
        std::memcpy(dst, src, n * sizeof(float));
    }
    void upload_bytes(void* dst, const void* src, size_t bytes) override {
        std::memcpy(dst, src, bytes);
    }
    void download_bytes(void* dst, const void* src, size_t bytes) override {
        std::memcpy(dst, src, bytes);
    }
    void synchronize() override {}

    void embedding_forward(void* out, const int32_t* tokens, const void* wte, const void* wpe,
                           int B, int T, int C) override {
        cpu::embedding_forward(f32(out), tokens, f32(wte), f32(wpe), B, T, C);
    }
    void embedding_backward(void* dwte, void* dwpe, const void* dout, const int32_t* tokens,
                            int B, int T, int C) override {
        cpu::embedding_backward(f32(dwte), f32(dwpe), f32(dout), tokens, B, T, C);
    }

    void layernorm_forward(void* out, float* mean, float* rstd, const void* inp,
                           const void* weight, const void* bias, int N, int C) override {
        cpu::layernorm_forward(f32(out), mean, rstd, f32(inp), f32(weight), f32(bias), N, C);
    }
    void layernorm_backward(void* dinp, void* dweight, void* dbias, const void* dout,
                            const void* inp, const void* weight, const float* mean,
                            const float* rstd, int N, int C) override {
        cpu::layernorm_backward(f32(dinp), f32(dweight), f32(dbias), f32(dout), f32(inp),
                                f32(weight), mean, rstd, N, C);
    }
    void residual_layernorm_forward(void* residual, void* out, float* mean, float* rstd,
                                    const void* inp1, const void* inp2, const void* weight,
                                    const void* bias, int N, int C) override {
        cpu::residual_layernorm_forward(f32(residual), f32(out), mean, rstd, f32(inp1),
                                        f32(inp2), f32(weight), f32(bias), N, C);
    }

    void matmul_forward(void* out, void* pre_gelu, const void* inp, const void* weight,
                        const void* bias, int N, int C, int OC) override {
        cpu::matmul_forward(f32(out), f32(pre_gelu), f32(inp), f32(weight), f32(bias), N, C, OC);
    }
    void matmul_backward(void* dinp, void* dweight, void* dbias, void* dout, const void* inp,
                         const void* weight, const void* pre_gelu, int N, int C,
                         int OC) override {
        cpu::matmul_backward(f32(dinp), f32(dweight), f32(dbias), f32(dout), f32(inp),
                             f32(weight), f32(pre_gelu), N, C, OC);
    }

    // The probabilities themselves: [B, NH, T, T].
    size_t attention_stats_floats(int B, int T, int NH) const override {
        return static_cast<size_t>(B) * NH * T * T;
    }
    void attention_forward(void* out, float* stats, const void* qkv, int B, int T, int C,
                           int NH) override {
        cpu::attention_forward(f32(out), stats, f32(qkv), B, T, C, NH);
    }
    // The output is not needed: the stored probabilities carry everything the CPU uses.
    void attention_backward(void* dqkv, const void* dout, const void* qkv, const void* /*out*/,
                            const float* stats, int B, int T, int C, int NH) override {
        cpu::attention_backward(f32(dqkv), f32(dout), f32(qkv), stats, B, T, C, NH);
    }

    void residual_forward(void* out, const void* a, const void* b, size_t n) override {
        cpu::residual_forward(f32(out), f32(a), f32(b), n);
    }

    double softmax_cross_entropy(void* logits, float* losses, const int32_t* targets, int N,
                                 int V, int Vp, float grad_scale) override {
        return cpu::softmax_cross_entropy(f32(logits), losses, targets, N, V, Vp, grad_scale);
    }

    double sum_squares(const void* x, size_t n) override { return cpu::sum_squares(f32(x), n); }

    // Storage is fp32 already: the sum is a plain add, the store a copy.
    void accumulate_f32(float* sum, const void* x, size_t n) override {
        cpu::residual_forward(sum, sum, f32(x), n);
    }
    void store_f32(void* dst, const float* src, size_t n) override {
        std::memcpy(dst, src, n * sizeof(float));
    }

    // Storage is fp32, so params are their own master; a separate master, when given, is
    // updated and then copied over the params. fp32 needs no rounding, hence no offset.
    void adamw_update(void* params, float* master, const void* grads, float* m, float* v,
                      size_t n, float lr, float beta1, float beta2, float eps, float weight_decay,
                      float grad_scale, int step, size_t /*offset*/,
                      uint64_t /*seed*/) override {
        float* p = master ? master : f32(params);
        cpu::adamw_update(p, f32(grads), m, v, n, lr, beta1, beta2, eps, weight_decay,
                          grad_scale, step);
        if (master) std::memcpy(params, master, n * sizeof(float));
    }

private:
    MemoryMeter memory_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend() { return std::make_unique<CpuBackend>(); }

}  // namespace diloco
