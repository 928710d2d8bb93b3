// The cross-island reduction of DiLoCo: a weighted mean of one fp32 vector per island, sharded
// so that rank r of every island reduces slice r, with a leader-only path for unequal islands.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "comm/topology.h"

namespace diloco {

struct SyncStats {
    uint64_t bytes_sent = 0;      // by this rank to other islands, as passed to MPI
    uint64_t bytes_received = 0;  // by this rank from other islands
    double seconds = 0;           // in the sync, waiting included
    double wait_seconds = 0;      // of which waiting for the other islands to arrive
};

// What each island says about itself at a sync: its weight (0: absent) and a note (its loss).
struct IslandNote {
    double weight = 0;
    double loss = 0;
};

class OuterSync {
public:
    explicit OuterSync(IslandComms& comms) : comms_(comms) {}

    // Replaces x (n floats, the same on every rank of an island) by sum_i w_i x_i / sum_i w_i
    // over islands, identical on every rank of the world. An island with weight 0 sends no
    // data and receives the result. notes gets every island's note. Returns sum_i w_i (0: x is
    // left unchanged).
    double weighted_mean(float* x, size_t n, IslandNote mine, std::vector<IslandNote>& notes,
                         SyncStats& stats);

private:
    double reduce_slice(Comm& across, float* slice, size_t n, IslandNote mine,
                        std::vector<IslandNote>& notes, SyncStats& stats);
    IslandComms& comms_;
};

// Bytes that island `island` of k sends to the others in one weighted_mean of n fp32 values
// when every island takes part and is split into `shards` ranks (1 on the leader path):
// about 2 (k - 1) / k of the vector, as a ring all-reduce, plus the weights.
uint64_t island_bytes_sent(size_t n, int k, int shards, int island);

}  // namespace diloco
