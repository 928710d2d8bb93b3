// AdamW over a flat buffer: fp32 moments and fp32 master weights; bf16 parameters receive the
// master value with stochastic rounding from a hash of (seed, step, index in the whole buffer).
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

template <typename S>
__global__ void adamw_kernel(S* __restrict__ params, float* __restrict__ master,
                             const S* __restrict__ grads, float* __restrict__ m,
                             float* __restrict__ v, size_t n, float lr, float beta1, float beta2,
                             float eps, float weight_decay, float grad_scale, float correction1,
                             float correction2, uint32_t step, uint64_t offset, uint64_t seed) {
    for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
         i += static_cast<size_t>(gridDim.x) * blockDim.x) {
        const float g = to_float(grads[i]) * grad_scale;
        const float mi = beta1 * m[i] + (1.0f - beta1) * g;
        const float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        const float mhat = mi / correction1, vhat = vi / correction2;
        float p = master ? master[i] : to_float(params[i]);
        p -= lr * (mhat / (sqrtf(vhat) + eps) + weight_decay * p);
        if (master) master[i] = p;
        params[i] = round_stochastic<S>(p, hash_index(offset + i, step, seed));
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
    const unsigned blocks = std::min<unsigned>(ceil_div(n, 256), 16u * ctx.sm_count);
    dispatch(ctx.bf16, [&](auto tag) {
        using S = typename decltype(tag)::type;
        adamw_kernel<S><<<blocks, 256, 0, ctx.stream>>>(
            static_cast<S*>(params), master, static_cast<const S*>(grads), m, v, n, lr, beta1,
            beta2, eps, weight_decay, grad_scale, c1, c2, static_cast<uint32_t>(step), offset,
            seed);
        CUDA_LAUNCH_CHECK();
    });
}

}  // namespace diloco::cuda
