// A communicator: the few collectives diloco needs, over MPI between processes or trivially
// within one process. Counts are in bytes or floats; every call is checked and throws on error.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace diloco {

// Where a rank sits on its machine: its index among the communicator's ranks that share the
// machine, and their count. It chooses the rank's GPU, whatever island the rank is in.
struct NodePlace {
    int rank = 0, size = 1;
};

class Comm {
public:
    virtual ~Comm() = default;
    virtual int rank() const = 0;
    virtual int size() const = 0;

    virtual void allreduce_sum(float* data, size_t n) = 0;
    virtual void allreduce_sum(double* data, size_t n) = 0;
    virtual void broadcast(void* data, size_t bytes, int root) = 0;
    // recv gets every rank's bytes in rank order; counts[r] is what rank r sends.
    virtual void allgatherv(const void* send, void* recv, const std::vector<size_t>& counts) = 0;
    // send holds one block per destination rank in rank order, recv one per source.
    virtual void alltoallv(const void* send, const std::vector<size_t>& send_counts, void* recv,
                           const std::vector<size_t>& recv_counts) = 0;
    virtual void barrier() = 0;
    // Ranks with the same color form a new communicator, ordered by key.
    virtual std::unique_ptr<Comm> split(int color, int key) = 0;
    // Whether two threads may run collectives at once on different communicators.
    virtual bool threads_concurrent() const { return true; }
    // Name of the machine this rank runs on (for one island per host).
    virtual std::string host() const = 0;
    // Collective: this rank's place among the ranks on its machine.
    virtual NodePlace node_place() = 0;
    // From now on every collective that waits past `seconds` for another rank throws an Error
    // naming the ranks that never came (and their islands, by world rank); 0: no limit. Only
    // communicators between processes have peers that can die: the others ignore it.
    virtual void set_deadline(double seconds, const std::vector<int>& island_of_world_rank) {
        (void)seconds, (void)island_of_world_rank;
    }
    // Adds `seconds` to the deadline of every call from now on (0: back to the deadline alone),
    // for a wait known to be long: islands that restart a round catching up with those that
    // kept theirs.
    virtual void extend_deadline(double seconds) { (void)seconds; }
};

// The world: MPI_COMM_WORLD when built with MPI and started under mpirun, else one process.
std::unique_ptr<Comm> world_comm(int* argc, char*** argv);

// Aborts every rank (after an Error on one of them) so that none is left waiting.
void abort_world(int code);

}  // namespace diloco
