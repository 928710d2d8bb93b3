// How the world's ranks form islands: K equal contiguous groups, explicit sizes, or one island
// per host; and each rank's communicators inside its island, across islands, among leaders.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "comm/comm.h"

namespace diloco {

struct Topology {
    int world_rank = 0, world_size = 1;
    int island = 0, islands = 1;
    int local_rank = 0, local_size = 1;
    std::vector<int> island_of_rank;  // for every world rank
    std::vector<int> island_sizes;
    // Each island's id (--island-ids; its index unless given): what its saved state, kept
    // progress, data stream and seeds belong to, so that an island keeps them when a restart on
    // fewer hosts numbers the islands anew.
    std::vector<int> island_ids;
    bool uniform() const;  // every island has the same number of ranks
    int island_id() const { return island_ids[island]; }
    // One more than the largest id: the number of streams the data is dealt into.
    int id_count() const;
};

// Island of every rank from the options: `islands` is a count K (equal contiguous groups) or
// "host"; `sizes` ("2,1,1") gives unequal contiguous groups. Errors say what does not fit.
std::vector<int> assign_islands(int world_size, const std::string& islands,
                                const std::string& sizes,
                                const std::vector<std::string>& host_of_rank);
Topology make_topology(int world_rank, const std::vector<int>& island_of_rank);

// "--island-ids 0,2": one distinct id in [0, 4096) per island, in island order; empty: 0..K-1.
// Errors start with `name` and the text.
std::vector<int> parse_island_ids(const std::string& ids, int islands,
                                  const std::string& name = "--island-ids");

// This process's place on its machine from the launcher's environment: Open MPI's
// OMPI_COMM_WORLD_LOCAL_RANK/_LOCAL_SIZE, else Slurm's SLURM_LOCALID with SLURM_TASKS_PER_NODE
// ("2(x3),1") and SLURM_NODEID, else alone. Malformed values are errors naming the variable.
NodePlace launcher_node_place();

// The GPU of the rank at `place` on a machine with gpu_count GPUs: its index on the machine
// modulo the count. More ranks than GPUs on one machine is an error unless `share` allows it.
int gpu_for_rank(const NodePlace& place, int gpu_count, bool share);

// Collective over world: this rank's place among the ranks on its machine that compute on a GPU
// (a CPU rank's among the CPU ranks), so that a CPU rank takes no GPU: gpu_for_rank's place.
NodePlace gpu_place(Comm& world, bool on_gpu);

struct IslandComms {
    Topology topology;
    NodePlace node;                 // this rank on its machine
    Comm* world = nullptr;          // not owned
    std::unique_ptr<Comm> island;   // the ranks of my island
    std::unique_ptr<Comm> cross;    // rank local_rank of every island (uniform islands)
    std::unique_ptr<Comm> leaders;  // local rank 0 of every island (meaningful on leaders)
};

// Collective over world: every rank must call it with the same options.
IslandComms connect_islands(Comm& world, const std::string& islands, const std::string& sizes);

}  // namespace diloco
