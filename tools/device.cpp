// Backend choice for the commands: the CPU, or the rank's GPU where the build has CUDA, and the
// NCCL gradient average of a GPU island. The only place in tools/ that knows the build's extras.
#include "tools/device.h"

#include "util/error.h"

#ifdef DILOCO_HAVE_CUDA
#include "kernels/cuda/cuda_backend.h"
#endif
#ifdef DILOCO_HAVE_NCCL
#include "comm/nccl_island.h"
#endif

namespace diloco {

namespace {

#ifdef DILOCO_HAVE_CUDA
int gpu_count() { return cuda_device_count(); }

Device cuda_device(bool bf16, int local_rank) {
    const int count = cuda_device_count();
    require(count > 0, "--device cuda: this machine has no CUDA device (or no driver)");
    // Ranks beyond the GPU count share GPUs: several islands can train on one GPU for tests.
    const int gpu = local_rank % count;
    return {make_cuda_backend(bf16, gpu), gpu};
}
#else
int gpu_count() { return 0; }

Device cuda_device(bool, int) {
    throw Error("--device cuda: this build has no CUDA backend (nvcc was not found when it was "
                "configured)");
}
#endif

}  // namespace

void add_device_options(CLI::App& cmd, DeviceOptions& options) {
    cmd.add_option("--device", options.device,
                   "cpu or cuda (default: cuda where the build has CUDA and the machine a GPU)");
    cmd.add_option("--precision", options.precision,
                   "CUDA storage: bf16 (default) or fp32 (TF32 off, to check against the CPU)");
}

Device make_device(const DeviceOptions& options, int local_rank) {
    const std::string device = !options.device.empty() ? options.device
                               : gpu_count() > 0       ? "cuda"
                                                       : "cpu";
    const std::string& precision = options.precision;
    require(device == "cpu" || device == "cuda",
            "--device '" + device + "': expected cpu or cuda");
    require(precision.empty() || precision == "bf16" || precision == "fp32",
            "--precision '" + precision + "': expected bf16 or fp32");
    if (device == "cuda") return cuda_device(precision != "fp32", local_rank);
    require(precision != "bf16", "--precision bf16 needs --device cuda: the CPU computes in fp32");
    return {make_cpu_backend(), -1};
}

#ifdef DILOCO_HAVE_NCCL
GradReducer island_average(Comm& island, const Device& device) {
    if (island.size() == 1) return {};
    cudaStream_t stream = device.gpu >= 0 ? cuda_stream(*device.backend) : nullptr;
    std::shared_ptr<NcclIsland> nccl = NcclIsland::connect(island, device.gpu, stream);
    if (!nccl) return {};
    const bool bf16 = device.backend->storage_bytes() == 2;
    return [nccl, bf16](void* grads, size_t n) { nccl->average(grads, n, bf16); };
}
#else
GradReducer island_average(Comm&, const Device&) { return {}; }
#endif

}  // namespace diloco
