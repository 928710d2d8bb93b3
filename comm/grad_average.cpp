// Gradient averaging on the host: an all-reduce inside the island (when the device did not do
// it), then, in ddp, the islands' mean weighted by their ranks, so every rank counts once.
#include "comm/grad_average.h"

namespace diloco {

GradAverage::GradAverage(IslandComms& comms, bool across_islands) : comms_(comms) {
    if (across_islands && comms.topology.islands > 1)
        across_ = std::make_unique<OuterSync>(comms);
}

bool GradAverage::needed() const { return comms_.topology.local_size > 1 || across_; }

bool GradAverage::needs_host(bool island_done) const {
    return across_ || (comms_.topology.local_size > 1 && !island_done);
}

void GradAverage::average(float* g, size_t n, bool island_done, SyncStats& traffic) {
    const Topology& t = comms_.topology;
    if (t.local_size > 1 && !island_done) {
        comms_.island->allreduce_sum(g, n);
        const float scale = 1.0f / t.local_size;
        for (size_t i = 0; i < n; i++) g[i] *= scale;
    }
    if (!across_) return;
    std::vector<IslandNote> notes;
    SyncStats stats;
    across_->weighted_mean(g, n, {double(t.local_size), 0.0}, notes, stats);
    stats.wait_seconds = stats.seconds;  // training waits for every gradient
    traffic.add(stats);
}

}  // namespace diloco
