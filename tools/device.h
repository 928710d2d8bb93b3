// Where a command computes: --device cpu|cuda and --precision bf16|fp32, each rank's GPU (its
// local rank modulo the GPU count), and the island's gradient average over NCCL between GPUs.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "comm/comm.h"
#include "kernels/backend.h"
#include "optim/inner.h"

namespace diloco {

struct DeviceOptions {
    std::string device;     // cpu or cuda; "": cuda where the build and the machine have it
    std::string precision;  // bf16 or fp32 (CUDA storage); "": bf16 on CUDA, fp32 on the CPU
};

void add_device_options(CLI::App& cmd, DeviceOptions& options);

struct Device {
    std::unique_ptr<Backend> backend;
    int gpu = -1;  // the CUDA device index, -1 on the CPU
};

// The backend of a rank that is rank `local_rank` of its island.
Device make_device(const DeviceOptions& options, int local_rank);

// Collective over the island's ranks: a gradient average that stays on the GPUs (NCCL), or
// empty where that cannot be (a CPU rank, a GPU shared by two ranks, no NCCL in the build,
// a one-rank island), leaving the DiLoCo loop to average through the host.
GradReducer island_average(Comm& island, const Device& device);

}  // namespace diloco
