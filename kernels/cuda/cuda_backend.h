// The CUDA Backend: bf16 (default) or fp32 storage on one GPU, fp32 accumulation everywhere;
// and the device-count probe that lets tools and tests skip cleanly where there is no GPU.
#pragma once

#include <cuda_runtime_api.h>

#include <memory>

#include "kernels/backend.h"

namespace diloco {

struct CudaOptions {
    bool bf16 = true;  // storage type; false: fp32 storage and fp32 matmuls (TF32 off)
    int device = 0;
    bool flash_attention = true;  // false: the plain path (cuBLAS products + softmax kernels)
};

std::unique_ptr<Backend> make_cuda_backend(bool bf16, int device);
std::unique_ptr<Backend> make_cuda_backend(const CudaOptions& options);

// Number of usable CUDA devices; 0 (never an error) without a driver or a GPU.
int cuda_device_count();

// The stream a CUDA backend runs its ops on (for events, NCCL, kernels/cuda/outer.cuh). Throws
// diloco::Error for any other backend.
cudaStream_t cuda_stream(Backend& backend);

}  // namespace diloco
