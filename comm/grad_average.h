// Averaging one step's gradients over the ranks that train the same parameters: the ranks of
// an island, and in ddp every island too (a sharded weighted mean, as the outer sync's).
#pragma once

#include <cstddef>
#include <memory>

#include "comm/outer_sync.h"
#include "comm/topology.h"

namespace diloco {

class GradAverage {
public:
    // Collective over the world when across_islands (ddp): it duplicates the island's
    // communicator for its sync, as OuterSync does.
    GradAverage(IslandComms& comms, bool across_islands);

    // Whether any other rank shares this rank's parameters (else there is nothing to average).
    bool needed() const;
    // Whether the gradients must come to the host, when island_done says the island has
    // already averaged them where they lie (NCCL on GPUs).
    bool needs_host(bool island_done) const;
    // g: n gradients on the host, already the island's mean when island_done; becomes the
    // mean over the island's ranks (equal weights) and, in ddp, over all islands weighted by
    // their ranks. The traffic across islands is added to `traffic` (training waits for it).
    void average(float* g, size_t n, bool island_done, SyncStats& traffic);

private:
    IslandComms& comms_;
    std::unique_ptr<OuterSync> across_;  // ddp only
};

}  // namespace diloco
