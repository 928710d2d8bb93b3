// Averaging a device buffer over a GPU island with NCCL: the check that each rank has a GPU of
// its own, the communicator's setup over MPI, and ncclAllReduce (ncclAvg) on the caller's stream.
#include "comm/nccl_island.h"

#include <nccl.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "util/error.h"

namespace diloco {
namespace {

void check_nccl(ncclResult_t result, const char* call) {
    if (result != ncclSuccess)
        throw Error(std::string("NCCL: ") + call + " failed: " + ncclGetErrorString(result));
}

void check_cuda(cudaError_t err, const char* call) {
    if (err != cudaSuccess)
        throw Error(std::string("CUDA: ") + call + " failed: " + cudaGetErrorString(err));
}

#define NCCL_CHECK(call) check_nccl((call), #call)
#define CUDA_CHECK(call) check_cuda((call), #call)

// "host pci-bus-id" of this rank's GPU ("" for a CPU rank). The bus id, not the index, names
// the device: ranks may see different CUDA_VISIBLE_DEVICES.
std::string gpu_key(Comm& island, int device) {
    if (device < 0) return {};
    char bus[64] = {};
    CUDA_CHECK(cudaDeviceGetPCIBusId(bus, sizeof(bus), device));
    return island.host() + " " + bus;
}

// The same answer on every rank: does each rank of the island have a GPU no other rank uses?
bool own_gpus(Comm& island, const std::string& key) {
    const size_t width = 320;  // a host name (at most 255) and a bus id
    std::vector<char> mine(width, '\0'), all(width * island.size());
    std::memcpy(mine.data(), key.data(), std::min(key.size(), width - 1));
    island.allgatherv(mine.data(), all.data(), std::vector<size_t>(island.size(), width));
    std::set<std::string> seen;
    for (int r = 0; r < island.size(); r++) {
        std::string k(all.data() + r * width);
        if (k.empty() || !seen.insert(k).second) return false;
    }
    return true;
}

}  // namespace

std::unique_ptr<NcclIsland> NcclIsland::connect(Comm& island, int device, cudaStream_t stream) {
    if (!own_gpus(island, gpu_key(island, device))) return nullptr;
    ncclUniqueId id{};
    if (island.rank() == 0) NCCL_CHECK(ncclGetUniqueId(&id));
    island.broadcast(&id, sizeof(id), 0);
    CUDA_CHECK(cudaSetDevice(device));  // the communicator binds to the current device
    ncclComm_t comm = nullptr;
    NCCL_CHECK(ncclCommInitRank(&comm, island.size(), id, island.rank()));
    return std::unique_ptr<NcclIsland>(new NcclIsland(comm, stream));
}

// A destructor must not throw: a failure is reported and teardown goes on.
NcclIsland::~NcclIsland() {
    const ncclResult_t result = ncclCommDestroy(comm_);
    if (result != ncclSuccess)
        std::fprintf(stderr, "warning: ncclCommDestroy: %s\n", ncclGetErrorString(result));
}

void NcclIsland::average(void* data, size_t n, bool bf16) {
    NCCL_CHECK(ncclAllReduce(data, data, n, bf16 ? ncclBfloat16 : ncclFloat32, ncclAvg, comm_,
                             stream_));
    // A failure inside NCCL (a lost peer, say) surfaces asynchronously: say so now rather than
    // queue more work on a broken communicator.
    ncclResult_t async = ncclSuccess;
    NCCL_CHECK(ncclCommGetAsyncError(comm_, &async));
    check_nccl(async, "ncclAllReduce (asynchronous error)");
}

}  // namespace diloco
