// Averaging a device buffer over a GPU island with NCCL: the check that each rank has a GPU of
// its own, the communicator's setup over MPI, ncclAllReduce (ncclAvg) on the caller's stream
// with a deadline, and ncclCommAbort wherever a peer may be gone.
#include "comm/nccl_island.h"

#include <nccl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <utility>
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

std::unique_ptr<NcclIsland> NcclIsland::connect(Comm& island, int device, cudaStream_t stream,
                                                const std::string& who, double timeout_s) {
    if (!own_gpus(island, gpu_key(island, device))) return nullptr;
    ncclUniqueId id{};
    if (island.rank() == 0) NCCL_CHECK(ncclGetUniqueId(&id));
    island.broadcast(&id, sizeof(id), 0);
    CUDA_CHECK(cudaSetDevice(device));  // the communicator binds to the current device
    ncclComm_t comm = nullptr;
    NCCL_CHECK(ncclCommInitRank(&comm, island.size(), id, island.rank()));
    return std::unique_ptr<NcclIsland>(new NcclIsland(comm, stream, who, timeout_s));
}

NcclIsland::NcclIsland(ncclComm* comm, cudaStream_t stream, std::string who, double timeout_s)
    : comm_(comm), stream_(stream), who_(std::move(who)), timeout_s_(timeout_s) {
    const cudaError_t err = cudaEventCreateWithFlags(&done_, cudaEventDisableTiming);
    if (err != cudaSuccess) {
        ncclCommAbort(comm_);
        check_cuda(err, "cudaEventCreateWithFlags");
    }
}

// A destructor must not throw: a failure is reported and teardown goes on. Destroying waits for
// the peers, so a communicator that failed, or one torn down by an error (a peer may be gone),
// is aborted instead.
NcclIsland::~NcclIsland() {
    const cudaError_t event = cudaEventDestroy(done_);
    if (event != cudaSuccess)
        std::fprintf(stderr, "warning: %s: cudaEventDestroy: %s\n", who_.c_str(),
                     cudaGetErrorString(event));
    if (aborted_) return;
    const bool unwinding = std::uncaught_exceptions() > 0;
    const ncclResult_t result = unwinding ? ncclCommAbort(comm_) : ncclCommDestroy(comm_);
    if (result != ncclSuccess)
        std::fprintf(stderr, "warning: %s: NCCL teardown: %s\n", who_.c_str(),
                     ncclGetErrorString(result));
}

void NcclIsland::fail(const std::string& what) {
    if (!aborted_) ncclCommAbort(comm_);
    aborted_ = true;
    throw Error("NCCL, " + who_ + ": " + what);
}

// Polls the event and NCCL's asynchronous error: a lost peer shows as an error or as an
// all-reduce that never finishes, and either ends in a clear error, not a hang.
void NcclIsland::wait_for(cudaEvent_t done) {
    const auto start = std::chrono::steady_clock::now();
    for (;;) {
        const cudaError_t state = cudaEventQuery(done);
        if (state == cudaSuccess) return;
        if (state != cudaErrorNotReady)
            fail(std::string("waiting for the all-reduce: ") + cudaGetErrorString(state));
        ncclResult_t async = ncclSuccess;
        const ncclResult_t got = ncclCommGetAsyncError(comm_, &async);
        if (got != ncclSuccess || async != ncclSuccess)
            fail(std::string("the all-reduce failed: ") +
                 ncclGetErrorString(got != ncclSuccess ? got : async));
        const double waited =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (waited > timeout_s_)
            fail("the all-reduce did not finish in " + std::to_string(int(timeout_s_)) +
                 " s (a peer of the island died or stopped); the communicator was aborted");
        std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
}

void NcclIsland::average(void* data, size_t n, bool bf16) {
    if (aborted_) fail("the communicator was aborted by an earlier error");
    const ncclResult_t queued =
        ncclAllReduce(data, data, n, bf16 ? ncclBfloat16 : ncclFloat32, ncclAvg, comm_, stream_);
    if (queued != ncclSuccess) fail(std::string("ncclAllReduce: ") + ncclGetErrorString(queued));
    const cudaError_t recorded = cudaEventRecord(done_, stream_);
    if (recorded != cudaSuccess) fail(std::string("cudaEventRecord: ") + cudaGetErrorString(recorded));
    wait_for(done_);
}

}  // namespace diloco
