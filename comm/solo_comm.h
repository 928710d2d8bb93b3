// The communicator of a single process: every collective is a copy. Used when diloco is built
// without MPI, and as the trivial group inside a one-rank island.
#pragma once

#include "comm/comm.h"

namespace diloco {

class SoloComm : public Comm {
public:
    int rank() const override { return 0; }
    int size() const override { return 1; }
    void allreduce_sum(float*, size_t) override {}
    void allreduce_sum(double*, size_t) override {}
    void broadcast(void*, size_t, int) override {}
    void allgatherv(const void* send, void* recv, const std::vector<size_t>& counts) override;
    void alltoallv(const void* send, const std::vector<size_t>& send_counts, void* recv,
                   const std::vector<size_t>& recv_counts) override;
    void barrier() override {}
    std::unique_ptr<Comm> split(int, int) override { return std::make_unique<SoloComm>(); }
    std::string host() const override;
    // Several one-process worlds started by mpirun or srun still find their place on the machine.
    NodePlace node_place() override;
};

}  // namespace diloco
