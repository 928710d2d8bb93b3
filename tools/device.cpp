// Backend choice for the commands: the CPU, or the rank's GPU where the build has CUDA, and the
// NCCL gradient average of a GPU island. The only place in tools/ that knows the build's extras.
#include "tools/device.h"

#include <algorithm>
#include <cmath>

#include "comm/topology.h"
#include "tools/options.h"
#include "util/error.h"

#ifdef DILOCO_HAVE_CUDA
#include "kernels/cuda/cuda_backend.h"
#endif
#ifdef DILOCO_HAVE_NCCL
#include "comm/nccl_island.h"
#endif

namespace diloco {

namespace {

std::string join(const std::vector<std::string>& words) {
    std::string text;
    for (const std::string& w : words) text += (text.empty() ? "" : ",") + w;
    return text;
}

#ifdef DILOCO_HAVE_CUDA
constexpr bool kCudaBuild = true;
int gpu_count() { return cuda_device_count(); }

// The option that put a rank on the GPU, for its errors.
std::string cuda_source(const DeviceOptions& o) {
    return o.island_devices.empty()
               ? "--device cuda"
               : "--island-devices " + join(o.island_devices) + " (this rank's island on cuda)";
}

Device cuda_device(const DeviceOptions& o, const NodePlace& place) {
    CudaOptions cuda;
    cuda.bf16 = o.precision != "fp32";
    const int gpus = cuda_device_count();
    require(gpus > 0, cuda_source(o) + ": this machine has no CUDA device (or no driver)");
    cuda.device = gpu_for_rank(place, gpus, o.share_gpus);
    cuda.attention = o.attention == "cudnn"   ? AttentionPath::cudnn
                     : o.attention == "flash" ? AttentionPath::flash
                     : o.attention == "plain" ? AttentionPath::plain
                                              : AttentionPath::automatic;
    return {make_cuda_backend(cuda), cuda.device};
}
#else
constexpr bool kCudaBuild = false;
int gpu_count() { return 0; }

// island_device_options refuses a CUDA island in this build before it gets here.
Device cuda_device(const DeviceOptions&, const NodePlace&) {
    throw Error("--device cuda: this build has no CUDA backend (nvcc was not found when it was "
                "configured)");
}
#endif

std::string resolved_device(const DeviceOptions& o) {
    return !o.device.empty() ? o.device : gpu_count() > 0 ? "cuda" : "cpu";
}

void check_precision(const std::string& precision) {
    require(precision.empty() || precision == "bf16" || precision == "fp32",
            "--precision '" + precision + "': expected bf16 or fp32");
}

}  // namespace

void add_device_options(CLI::App& cmd, DeviceOptions& options) {
    cmd.add_option("--device", options.device,
                   "cpu or cuda (default: cuda where the build has CUDA and the machine a GPU)");
    cmd.add_option("--precision", options.precision,
                   "CUDA storage: bf16 (default) or fp32 (TF32 off, to check against the CPU)");
    cmd.add_flag("--share-gpus", options.share_gpus,
                 "let more ranks than GPUs on one machine share them (tests, small models)");
    add_number(cmd, "--island-timeout", options.island_timeout_s,
               {.min = 0, .max = 7 * 24 * 3600, .min_open = true},
               "seconds an all-reduce inside a GPU island may take before the run stops with "
               "an error naming the rank (a dead or stuck peer)");
    cmd.add_option("--attention", options.attention,
                   "CUDA attention: cudnn (fused, tensor cores), flash (our kernels) or plain "
                   "(cuBLAS + softmax); default: cudnn where it can run, else flash")
        ->check(CLI::IsMember({"cudnn", "flash", "plain"}));
}

void add_island_devices_option(CLI::App& cmd, DeviceOptions& options) {
    add_list(cmd, "--island-devices", options.island_devices, CLI::IsMember({"cpu", "cuda"}),
             "cpu or cuda for each island, in island order, e.g. cuda,cpu (--precision and "
             "--attention apply to the CUDA islands; not with --device)");
}

DeviceOptions island_device_options(const DeviceOptions& options, int island, int islands) {
    const std::vector<std::string>& devices = options.island_devices;
    if (devices.empty()) return options;
    const std::string what = "--island-devices " + join(devices);
    require(options.device.empty(), "--island-devices and --device exclude each other: give one");
    require(int(devices.size()) == islands,
            what + ": " + std::to_string(devices.size()) + " device" +
                (devices.size() == 1 ? "" : "s") + " for " + std::to_string(islands) +
                " island" + (islands == 1 ? "" : "s") + " (one per island, in island order)");
    const bool any_cuda = std::ranges::find(devices, "cuda") != devices.end();
    require(!any_cuda || kCudaBuild, what + ": this build has no CUDA backend (nvcc was not "
                                            "found when it was configured)");
    check_precision(options.precision);
    // The CPU islands ignore them, but options that reach no island at all are a mistake.
    require(any_cuda || (options.precision != "bf16" && options.attention.empty()),
            what + ": --precision bf16 and --attention apply to CUDA islands, and there are none");
    DeviceOptions mine = options;
    mine.device = devices[island];
    if (mine.device == "cpu") {
        mine.precision.clear();
        mine.attention.clear();
    }
    return mine;
}

bool uses_gpu(const DeviceOptions& options) { return resolved_device(options) == "cuda"; }

Device make_device(const DeviceOptions& options, const NodePlace& place) {
    const std::string device = resolved_device(options);
    const std::string& precision = options.precision;
    require(device == "cpu" || device == "cuda",
            "--device '" + device + "': expected cpu or cuda");
    check_precision(precision);
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
