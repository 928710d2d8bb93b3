// AdamW over a flat buffer: fp32 moments and fp32 master weights; bf16 parameters receive the
// master value with stochastic rounding from a hash of (seed, step, index in the whole buffer).
#include <algorithm>
#include <cmath>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/ops.h"

namespace diloco::cuda {
namespace {

// splitmix64's finaliser over the index, the step and the seed (the run's, mixed with the island's
// by the caller), so that no two runs or islands share a rounding stream.
__device__ __forceinline__ uint32_t hash_index(uint64_t i, uint32_t step, uint64_t seed) {
    uint64_t x = i ^ (static_cast<uint64_t>(step) * 0x9E3779B97F4A7C15ull) ^
                 (seed * 0xD1B54A32D192ED03ull);
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return static_cast<uint32_t>(x ^ (x >> 31));
}

// Rounds up in magnitude with probability (dropped bits) / 2^16: unbiased in expectation, so
// updates far below bf16's resolution still move the parameter on average.
template <typename S>
__device__ __forceinline__ S round_stochastic(float x, uint32_t random);
template <>
__device__ __forceinline__ float round_stochastic<float>(float x, uint32_t) {
    return x;
}
template <>
__device__ __forceinline__ bf16 round_stochastic<bf16>(float x, uint32_t random) {
    uint32_t u = __float_as_uint(x);
    if ((u & 0x7f800000u) == 0x7f800000u) return __float2bfloat16_rn(x);  // inf, nan
    u += random & 0xffffu;
    return __ushort_as_bfloat16(static_cast<unsigned short>(u >> 16));
}

// One element's AdamW update: moments m, v move in place; returns the new parameter value.
struct AdamStep {
    float lr, beta1, beta2, eps, weight_decay, grad_scale, correction1, correction2;
    __device__ __forceinline__ float operator()(float grad, float& m, float& v, float p) const {
        const float g = grad * grad_scale;
        m = beta1 * m + (1.0f - beta1) * g;
        v = beta2 * v + (1.0f - beta2) * g * g;
        const float mhat = m / correction1, vhat = v / correction2;
        return p - lr * (mhat / (sqrtf(vhat) + eps) + weight_decay * p);
    }
};

// V consecutive elements per thread and access (16-byte fp32 moments when V = 4).
template <typename S, int V>
__global__ void adamw_kernel(S* __restrict__ params, float* __restrict__ master,
                             const S* __restrict__ grads, float* __restrict__ m,
                             float* __restrict__ v, size_t n, AdamStep update, uint32_t step,
                             uint64_t offset, uint64_t seed) {
    for (size_t i = (static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x) * V; i < n;
         i += static_cast<size_t>(gridDim.x) * blockDim.x * V) {
        float g[V], mi[V], vi[V], p[V];
        load<V>(g, grads + i);
        load<V>(mi, m + i);
        load<V>(vi, v + i);
        if (master)
            load<V>(p, master + i);
        else
            load<V>(p, params + i);
        Pack<S, V> rounded;
#pragma unroll
        for (int k = 0; k < V; k++) {
            p[k] = update(g[k], mi[k], vi[k], p[k]);
            rounded.v[k] = round_stochastic<S>(p[k], hash_index(offset + i + k, step, seed));
        }
        store<V>(m + i, mi);
        store<V>(v + i, vi);
        if (master) store<V>(master + i, p);
        *reinterpret_cast<Pack<S, V>*>(params + i) = rounded;
    }
}

}  // namespace

void adamw_update(Context& ctx, void* params, float* master, const void* grads, float* m, float* v,
                  size_t n, float lr, float beta1, float beta2, float eps, float weight_decay,
                  float grad_scale, int step, size_t offset, uint64_t seed) {
    require(step >= 1, "adamw_update: step counts from 1, got " + std::to_string(step));
    if (n == 0) return;
    const float c1 = 1.0f - std::pow(beta1, static_cast<float>(step));
    const float c2 = 1.0f - std::pow(beta2, static_cast<float>(step));
    const AdamStep update{lr, beta1, beta2, eps, weight_decay, grad_scale, c1, c2};
    constexpr int kV = 4;
    const bool vec = n % kV == 0 && aligned16(m) && aligned16(v) && (!master || aligned16(master)) &&
                     reinterpret_cast<uintptr_t>(params) % (kV * ctx.elem()) == 0 &&
                     reinterpret_cast<uintptr_t>(grads) % (kV * ctx.elem()) == 0;
    dispatch(ctx.bf16, [&](auto tag) {
        using S = typename decltype(tag)::type;
        auto launch = [&](auto kernel, int V) {
            const unsigned blocks = std::min<unsigned>(ceil_div(n / V, 256), 16u * ctx.sm_count);
            kernel<<<blocks, 256, 0, ctx.stream>>>(static_cast<S*>(params), master,
                                                   static_cast<const S*>(grads), m, v, n, update,
                                                   static_cast<uint32_t>(step), offset, seed);
            CUDA_LAUNCH_CHECK();
        };
        if (vec)
            launch(adamw_kernel<S, kV>, kV);
        else
            launch(adamw_kernel<S, 1>, 1);
    });
}

}  // namespace diloco::cuda
