// Averaging a device buffer over the ranks of a GPU island with NCCL: one communicator per
// island, its unique id broadcast over the island's MPI communicator; data never leaves the GPU.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <memory>
#include <string>

#include "comm/comm.h"

struct ncclComm;  // nccl.h's ncclComm_t, kept out of this header

namespace diloco {

class NcclIsland {
public:
    // Collective over `island`: each rank passes its CUDA device (-1 when it computes on the
    // CPU) and the stream its buffers are written on. Every rank gets a communicator, or every
    // rank gets null: when a rank has no GPU, or two ranks share one (NCCL refuses that).
    // `who` ("island 2, rank 1") names this rank in errors; an all-reduce that has not finished
    // after timeout_s seconds is an error (a peer died or hangs), and the communicator aborts.
    static std::unique_ptr<NcclIsland> connect(Comm& island, int device, cudaStream_t stream,
                                               const std::string& who, double timeout_s);
    ~NcclIsland();
    NcclIsland(const NcclIsland&) = delete;
    NcclIsland& operator=(const NcclIsland&) = delete;

    // In place on the stream: n values (bf16, else fp32) become their island mean. Returns when
    // the all-reduce has finished, polling NCCL's asynchronous errors while it waits.
    void average(void* data, size_t n, bool bf16);

private:
    NcclIsland(ncclComm* comm, cudaStream_t stream, std::string who, double timeout_s);
    // Aborts the communicator (no peer is waited for) and throws `what` naming this rank.
    [[noreturn]] void fail(const std::string& what);
    void wait_for(cudaEvent_t done);
    ncclComm* comm_;
    cudaStream_t stream_;
    cudaEvent_t done_ = nullptr;
    std::string who_;
    double timeout_s_;
    bool aborted_ = false;
};

}  // namespace diloco
