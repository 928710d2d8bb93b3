// The cross-island weighted mean: weights are gathered first, then each member of a group
// reduces one sub-slice (alltoallv in, sum in island order in double, allgatherv out), so every
// rank computes the same bits and absent islands put no data on the wire.
#include "comm/outer_sync.h"

#include <chrono>
#include <vector>

#include "util/error.h"

namespace diloco {

namespace {

struct Range {
    size_t begin, end;
    size_t size() const { return end - begin; }
};

Range part(size_t n, int i, int parts) {
    return {n * static_cast<size_t>(i) / parts, n * static_cast<size_t>(i + 1) / parts};
}

}  // namespace

uint64_t island_bytes_sent(size_t n, int k, int shards, int island) {
    uint64_t bytes = 0;
    for (int r = 0; r < shards; r++) {
        const size_t slice = part(n, r, shards).size(), mine = part(slice, island, k).size();
        bytes += (slice - mine) * sizeof(float);           // reduce-scatter: the others' sub-slices
        bytes += (k - 1) * mine * sizeof(float);           // all-gather: my reduced sub-slice
        bytes += (k - 1) * sizeof(IslandNote);             // my island's weight and loss
    }
    return bytes;
}

double OuterSync::reduce_slice(Comm& across, float* slice, size_t n, IslandNote mine_note,
                               std::vector<IslandNote>& notes, SyncStats& stats) {
    const int k = across.size(), me = across.rank();
    notes.resize(k);
    // The first collective absorbs the islands' skew: its duration is the time spent waiting.
    auto start = std::chrono::steady_clock::now();
    across.allgatherv(&mine_note, notes.data(), std::vector<size_t>(k, sizeof(IslandNote)));
    stats.wait_seconds +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    stats.bytes_sent += sizeof(IslandNote) * (k - 1);
    stats.bytes_received += sizeof(IslandNote) * (k - 1);
    const double weight = mine_note.weight;
    std::vector<double> weights(k);
    double total = 0;
    for (int i = 0; i < k; i++) {
        weights[i] = notes[i].weight;
        require(weights[i] >= 0, "outer sync: negative island weight");
        total += weights[i];
    }
    if (total == 0) return 0;

    const Range mine = part(n, me, k);
    std::vector<size_t> send(k), recv(k), result_counts(k);
    for (int j = 0; j < k; j++) {
        send[j] = weight > 0 ? part(n, j, k).size() * sizeof(float) : 0;
        recv[j] = weights[j] > 0 ? mine.size() * sizeof(float) : 0;
        result_counts[j] = part(n, j, k).size() * sizeof(float);
    }
    std::vector<float> blocks(mine.size() * k);
    across.alltoallv(slice, send, blocks.data(), recv);
    for (int j = 0; j < k; j++) {
        if (j == me) continue;
        stats.bytes_sent += send[j] + result_counts[me];
        stats.bytes_received += recv[j] + result_counts[j];
    }

    std::vector<float> reduced(mine.size());
    for (size_t t = 0; t < mine.size(); t++) {
        double acc = 0;
        const float* block = blocks.data();
        for (int i = 0; i < k; i++) {
            if (weights[i] == 0) continue;
            acc += (weights[i] / total) * block[t];
            block += mine.size();
        }
        reduced[t] = static_cast<float>(acc);
    }
    across.allgatherv(reduced.data(), slice, result_counts);
    return total;
}

double OuterSync::weighted_mean(float* x, size_t n, IslandNote mine,
                                std::vector<IslandNote>& notes, SyncStats& stats) {
    auto start = std::chrono::steady_clock::now();
    const Topology& t = comms_.topology;
    double total = 0;
    if (t.uniform()) {
        const Range slice = part(n, t.local_rank, t.local_size);
        total = reduce_slice(*comms_.cross, x + slice.begin, slice.size(), mine, notes, stats);
        if (t.local_size > 1 && total > 0) {
            std::vector<size_t> counts(t.local_size);
            for (int r = 0; r < t.local_size; r++)
                counts[r] = part(n, r, t.local_size).size() * sizeof(float);
            std::vector<float> mine(x + slice.begin, x + slice.end);  // MPI forbids aliasing
            comms_.island->allgatherv(mine.data(), x, counts);
        }
    } else {
        notes.resize(t.islands);
        if (t.local_rank == 0) total = reduce_slice(*comms_.leaders, x, n, mine, notes, stats);
        comms_.island->broadcast(&total, sizeof(total), 0);
        comms_.island->broadcast(notes.data(), notes.size() * sizeof(IslandNote), 0);
        if (total > 0) comms_.island->broadcast(x, n * sizeof(float), 0);
    }
    stats.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return total;
}

}  // namespace diloco
