// Averaging a device buffer over the ranks of a GPU island with NCCL: one communicator per
// island, its unique id broadcast over the island's MPI communicator; data never leaves the GPU.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <memory>

#include "comm/comm.h"

struct ncclComm;  // nccl.h's ncclComm_t, kept out of this header

namespace diloco {

class NcclIsland {
public:
    // Collective over `island`: each rank passes its CUDA device (-1 when it computes on the
    // CPU) and the stream its buffers are written on. Every rank gets a communicator, or every
    // rank gets null: when a rank has no GPU, or two ranks share one (NCCL refuses that).
    static std::unique_ptr<NcclIsland> connect(Comm& island, int device, cudaStream_t stream);
    ~NcclIsland();
    NcclIsland(const NcclIsland&) = delete;
    NcclIsland& operator=(const NcclIsland&) = delete;

    // In place, queued on the stream: n values (bf16, else fp32) become their island mean.
    void average(void* data, size_t n, bool bf16);

private:
    NcclIsland(ncclComm* comm, cudaStream_t stream) : comm_(comm), stream_(stream) {}
    ncclComm* comm_;
    cudaStream_t stream_;
};

}  // namespace diloco
