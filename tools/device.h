// Where a command computes: --device cpu|cuda (or train's --island-devices, one per island) and
// --precision bf16|fp32, each rank's GPU (its index among the GPU ranks on its machine), and the
// island's gradient average over NCCL.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>
#include <vector>

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
    std::vector<std::string> island_devices;  // train: cpu or cuda per island; none: --device
};

void add_device_options(CLI::App& cmd, DeviceOptions& options);
// --island-devices, for `diloco train` only.
void add_island_devices_option(CLI::App& cmd, DeviceOptions& options);

// The options of the ranks of `island` (of `islands`): --island-devices' entry for it, with
// --precision and --attention kept for a CUDA island only, or without it the options as given.
// Checks the list against the island count and the build: the same answer on every rank.
DeviceOptions island_device_options(const DeviceOptions& options, int island, int islands);

// Whether ranks with these options compute on a GPU ("": where the build and machine have one).
bool uses_gpu(const DeviceOptions& options);

struct Device {
    std::unique_ptr<Backend> backend;
    int gpu = -1;  // the CUDA device index, -1 on the CPU
};

// The backend of a rank at `place` among the GPU ranks on its machine (comm/topology.h
// gpu_place).
Device make_device(const DeviceOptions& options, const NodePlace& place);

// Collective over the island's ranks: a gradient average that stays on the GPUs (NCCL), or
// empty where that cannot be (a CPU rank, a GPU shared by two ranks, no NCCL in the build,
// a one-rank island), leaving the DiLoCo loop to average through the host.
// `who` names the rank in errors ("island 1, rank 0").
GradReducer island_average(Comm& island, const Device& device, const DeviceOptions& options,
                           const std::string& who);

}  // namespace diloco
