// Backend choice for the commands: the CPU, or the rank's GPU where the build has CUDA, and the
// NCCL gradient average of a GPU island. The only place in tools/ that knows the build's extras.
#include "tools/device.h"

#include <cmath>

#include "comm/topology.h"
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

Device cuda_device(const DeviceOptions& o, const NodePlace& place) {
    CudaOptions cuda;
    cuda.bf16 = o.precision != "fp32";
    cuda.device = gpu_for_rank(place, cuda_device_count(), o.share_gpus);
    cuda.attention = o.attention == "cudnn"   ? AttentionPath::cudnn
                     : o.attention == "flash" ? AttentionPath::flash
                     : o.attention == "plain" ? AttentionPath::plain
                                              : AttentionPath::automatic;
    return {make_cuda_backend(cuda), cuda.device};
}
#else
int gpu_count() { return 0; }

Device cuda_device(const DeviceOptions&, const NodePlace&) {
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
    cmd.add_flag("--share-gpus", options.share_gpus,
                 "let more ranks than GPUs on one machine share them (tests, small models)");
    cmd.add_option("--island-timeout", options.island_timeout_s,
                   "seconds an all-reduce inside a GPU island may take before the run stops with "
                   "an error naming the rank (a dead or stuck peer)")
        ->check(CLI::Validator(
            [](const std::string& text) {
                double v = 0;
                return CLI::detail::lexical_cast(text, v) && std::isfinite(v) && v > 0
                           ? std::string()
                           : "'" + text + "' is not a positive number of seconds";
            },
            "SECONDS"));
    cmd.add_option("--attention", options.attention,
                   "CUDA attention: cudnn (fused, tensor cores), flash (our kernels) or plain "
                   "(cuBLAS + softmax); default: cudnn where it can run, else flash")
        ->check(CLI::IsMember({"cudnn", "flash", "plain"}));
}

Device make_device(const DeviceOptions& options, const NodePlace& place) {
    const std::string device = !options.device.empty() ? options.device
                               : gpu_count() > 0       ? "cuda"
                                                       : "cpu";
    const std::string& precision = options.precision;
    require(device == "cpu" || device == "cuda",
            "--device '" + device + "': expected cpu or cuda");
    require(precision.empty() || precision == "bf16" || precision == "fp32",
            "--precision '" + precision + "': expected bf16 or fp32");
    if (device == "cuda") return cuda_device(options, place);
    require(options.attention.empty(),
            "--attention " + options.attention + " needs --device cuda: the CPU has one attention");
    require(precision != "bf16", "--precision bf16 needs --device cuda: the CPU computes in fp32");
    return {make_cpu_backend(), -1};
}

#ifdef DILOCO_HAVE_NCCL
GradReducer island_average(Comm& island, const Device& device, const DeviceOptions& options,
                           const std::string& who) {
    if (island.size() == 1) return {};
    cudaStream_t stream = device.gpu >= 0 ? cuda_stream(*device.backend) : nullptr;
    std::shared_ptr<NcclIsland> nccl =
        NcclIsland::connect(island, device.gpu, stream, who, options.island_timeout_s);
    if (!nccl) return {};
    const bool bf16 = device.backend->storage_bytes() == 2;
    return [nccl, bf16](void* grads, size_t n) { nccl->average(grads, n, bf16); };
}
#else
GradReducer island_average(Comm&, const Device&, const DeviceOptions&, const std::string&) {
    return {};
}
#endif

}  // namespace diloco
