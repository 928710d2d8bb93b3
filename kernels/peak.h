// Peak matrix rates for model FLOPs utilisation: dense bf16 tensor-core rates of known GPUs
// (data-sheet figures, by device name), and a CPU's matmul rate measured through a backend.
#pragma once

#include <string>

#include "kernels/backend.h"

namespace diloco {

// Dense (no sparsity) bf16 tensor-core peak in FLOP/s of the GPU with this CUDA device name,
// or 0 when the name is not in the table: an unknown GPU gets no figure rather than a guess.
double gpu_bf16_peak_flops(const std::string& device_name);

// The best rate, in FLOP/s, of `reps` products out[N,OC] = inp[N,C] W^T + b on the backend
// after one warm-up product.
double measure_matmul_flops(Backend& backend, int N, int C, int OC, int reps);

}  // namespace diloco
