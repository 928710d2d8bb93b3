// Where a command computes: --device cpu|cuda and --precision bf16|fp32, each rank's GPU (its
// index among the ranks on its machine), and the island's gradient average over NCCL.
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
    std::string attention;  // cudnn, flash or plain; "": cudnn where it can run, else flash
    bool share_gpus = false;  // let more ranks than GPUs on a machine share them
    double island_timeout_s = 600;  // an island all-reduce slower than this is an error
};

void add_device_options(CLI::App& cmd, DeviceOptions& options);

struct Device {
    std::unique_ptr<Backend> backend;
    int gpu = -1;  // the CUDA device index, -1 on the CPU
};

// The backend of a rank at `place` on its machine.
Device make_device(const DeviceOptions& options, const NodePlace& place);

// Collective over the island's ranks: a gradient average that stays on the GPUs (NCCL), or
// empty where that cannot be (a CPU rank, a GPU shared by two ranks, no NCCL in the build,
// a one-rank island), leaving the DiLoCo loop to average through the host.
// `who` names the rank in errors ("island 1, rank 0").
GradReducer island_average(Comm& island, const Device& device, const DeviceOptions& options,
                           const std::string& who);

}  // namespace diloco
