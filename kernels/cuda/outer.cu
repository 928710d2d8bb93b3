// DiLoCo's outer-loop helpers: outer gradient and the outer momentum step, elementwise fp32.
// Launch errors throw diloco::Error like every other CUDA call in kernels/cuda.
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/outer.cuh"

namespace diloco::cuda {
namespace {

__global__ void outer_gradient_kernel(float* delta, const float* global, const float* local,
                                      size_t n) {
    const size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) delta[i] = global[i] - local[i];
}

__global__ void outer_momentum_kernel(float* __restrict__ global, float* __restrict__ momentum,
                                      const float* __restrict__ delta, size_t n, float lr, float mu,
                                      bool nesterov) {
    const size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const float d = delta[i];
    const float m = mu * momentum[i] + d;
    momentum[i] = m;
    global[i] -= lr * (nesterov ? d + mu * m : m);
}

}  // namespace

void outer_gradient(float* delta, const float* global, const float* local, size_t n,
                    cudaStream_t stream) {
    if (n == 0) return;
    outer_gradient_kernel<<<ceil_div(n, 256), 256, 0, stream>>>(delta, global, local, n);
    CUDA_LAUNCH_CHECK();
}

void outer_momentum_step(float* global, float* momentum, const float* delta, size_t n, float lr,
                         float mu, bool nesterov, cudaStream_t stream) {
    if (n == 0) return;
    outer_momentum_kernel<<<ceil_div(n, 256), 256, 0, stream>>>(global, momentum, delta, n, lr, mu,
                                                                nesterov);
    CUDA_LAUNCH_CHECK();
}

}  // namespace diloco::cuda
