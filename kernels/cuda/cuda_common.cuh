// Shared by the CUDA op files: error checks that throw diloco::Error with file:line, storage-type
// conversions (fp32 / bf16), 16-byte vector packs, warp reductions, the GELU formulas.
#pragma once

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <type_traits>

#include "util/error.h"

namespace diloco::cuda {

[[noreturn]] inline void fail(const char* what, const char* call, const char* file, int line) {
    throw Error(std::string("CUDA error at ") + file + ":" + std::to_string(line) + ": " + what +
                " (" + call + ")");
}

#define CUDA_CHECK(call)                                                               \
    do {                                                                               \
        cudaError_t err_ = (call);                                                     \
        if (err_ != cudaSuccess)                                                       \
            ::diloco::cuda::fail(cudaGetErrorString(err_), #call, __FILE__, __LINE__); \
    } while (0)

#define CUBLAS_CHECK(call)                                                               \
    do {                                                                                 \
        cublasStatus_t st_ = (call);                                                     \
        if (st_ != CUBLAS_STATUS_SUCCESS)                                                \
            ::diloco::cuda::fail(cublasGetStatusString(st_), #call, __FILE__, __LINE__); \
    } while (0)

// After every kernel launch: a bad configuration shows up here, not at the next sync.
#define CUDA_LAUNCH_CHECK() CUDA_CHECK(cudaGetLastError())

using bf16 = __nv_bfloat16;

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(bf16 x) { return __bfloat162float(x); }

template <typename S>
__device__ __forceinline__ S from_float(float x);
template <>
__device__ __forceinline__ float from_float<float>(float x) {
    return x;
}
template <>
__device__ __forceinline__ bf16 from_float<bf16>(float x) {
    return __float2bfloat16_rn(x);
}

// Rounds through the storage type, so a sum sees exactly what was stored.
template <typename S>
__device__ __forceinline__ float round_to(float x) {
    return to_float(from_float<S>(x));
}

// V consecutive storage values moved as one access: 16 bytes when V = 16 / sizeof(S).
template <typename S, int V>
struct alignas(sizeof(S) * V) Pack {
    S v[V];
};

template <int V, typename S>
__device__ __forceinline__ void load(float (&out)[V], const S* p) {
    Pack<S, V> pk = *reinterpret_cast<const Pack<S, V>*>(p);
#pragma unroll
    for (int k = 0; k < V; k++) out[k] = to_float(pk.v[k]);
}

template <int V, typename S>
__device__ __forceinline__ void store(S* p, const float (&in)[V]) {
    Pack<S, V> pk;
#pragma unroll
    for (int k = 0; k < V; k++) pk.v[k] = from_float<S>(in[k]);
    *reinterpret_cast<Pack<S, V>*>(p) = pk;
}

// Elements per 16-byte access for storage type S.
template <typename S>
constexpr int kVec = 16 / static_cast<int>(sizeof(S));

inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }
inline bool aligned32(const void* p) { return reinterpret_cast<uintptr_t>(p) % 32 == 0; }

// Butterfly sums: every lane ends with the same value, in the same order on every run.
__device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
    for (int off = 16; off > 0; off /= 2) x += __shfl_xor_sync(0xffffffffu, x, off);
    return x;
}

__device__ __forceinline__ float warp_max(float x) {
#pragma unroll
    for (int off = 16; off > 0; off /= 2) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, off));
    return x;
}

// GELU, tanh approximation (GPT-2), and its derivative; full-precision tanhf so fp32 mode
// agrees with the CPU oracle to rounding.
constexpr float kGeluK = 0.7978845608028654f;  // sqrt(2 / pi)
constexpr float kGeluC = 0.044715f;

__device__ __forceinline__ float gelu(float x) {
    float u = kGeluK * (x + kGeluC * x * x * x);
    return 0.5f * x * (1.0f + tanhf(u));
}

__device__ __forceinline__ float gelu_grad(float x) {
    float u = kGeluK * (x + kGeluC * x * x * x);
    float t = tanhf(u);
    float du = kGeluK * (1.0f + 3.0f * kGeluC * x * x);
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du;
}

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// Calls f(Tag<S>{}) with the storage type S; with a second argument, also the vector width V
// as std::integral_constant: 16 bytes when vec_ok (aligned pointers, divisible sizes), else 1.
template <typename S>
struct Tag {
    using type = S;
};

template <typename F>
void dispatch(bool is_bf16, F&& f) {
    if (is_bf16)
        f(Tag<bf16>{});
    else
        f(Tag<float>{});
}

template <typename F>
void dispatch_vec(bool is_bf16, bool vec_ok, F&& f) {
    using One = std::integral_constant<int, 1>;
    if (is_bf16) {
        if (vec_ok)
            f(Tag<bf16>{}, std::integral_constant<int, kVec<bf16>>{});
        else
            f(Tag<bf16>{}, One{});
    } else {
        if (vec_ok)
            f(Tag<float>{}, std::integral_constant<int, kVec<float>>{});
        else
            f(Tag<float>{}, One{});
    }
}

inline unsigned ceil_div(size_t a, size_t b) { return static_cast<unsigned>((a + b - 1) / b); }

}  // namespace diloco::cuda
