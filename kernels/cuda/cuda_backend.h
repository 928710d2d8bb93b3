// The CUDA Backend: bf16 (default) or fp32 storage on one GPU, fp32 accumulation everywhere;
// and the device-count probe that lets tools and tests skip cleanly where there is no GPU.
#pragma once

#include <cuda_runtime_api.h>

#include <memory>

#include "kernels/backend.h"

namespace diloco {

// How attention runs: cuDNN's fused kernels (tensor cores), our flash-style kernels, or the plain
// path (cuBLAS products around softmax kernels). cudnn needs bf16, compute capability 8.0+ and a
// build with cuDNN; a shape that cuDNN refuses (T = 1, a head size not a multiple of 8) runs on
// flash, with a note. automatic: cudnn where it can run, else flash.
enum class AttentionPath { automatic, cudnn, flash, plain };

struct CudaOptions {
    bool bf16 = true;  // storage type; false: fp32 storage and fp32 matmuls (TF32 off)
    int device = 0;
    AttentionPath attention = AttentionPath::automatic;
};

// Whether this build has the cuDNN attention path.
bool cuda_has_cudnn_attention();

std::unique_ptr<Backend> make_cuda_backend(const CudaOptions& options);

// Number of usable CUDA devices; 0 (never an error) without a driver or a GPU.
int cuda_device_count();

// The stream a CUDA backend runs its ops on (for events and NCCL). Throws
// diloco::Error for any other backend.
cudaStream_t cuda_stream(Backend& backend);

}  // namespace diloco
