// DiLoCo's outer-loop helpers on the GPU, over plain fp32 device vectors: the outer gradient
// and the outer momentum step (Nesterov or heavy-ball SGD). Callable from C++ (.cpp) code.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>

namespace diloco::cuda {

// delta[i] = global[i] - local[i]: the island's outer gradient (pseudo-gradient). delta may
// alias either input.
void outer_gradient(float* delta, const float* global, const float* local, size_t n,
                    cudaStream_t stream);

// m <- mu * m + delta, then global -= lr * (delta + mu * m) with Nesterov (PyTorch SGD,
// nesterov=True, dampening 0), or global -= lr * m without. mu = 0 is plain SGD; lr = 1,
// mu = 0 sets global to global - delta (averaging, when delta is the islands' mean).
void outer_momentum_step(float* global, float* momentum, const float* delta, size_t n, float lr,
                         float mu, bool nesterov, cudaStream_t stream);

}  // namespace diloco::cuda
