// The cross-island weighted mean: weights are gathered first, then each member of a group
// reduces one sub-slice (alltoallv of encoded blocks in, decode and sum in island order in
// double, encode once, allgatherv out), so every rank decodes the same bytes into the same bits
// and absent islands put no data on the wire.
#include "comm/outer_sync.h"

#include <chrono>
#include <cmath>
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

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The k sub-slices of x, each encoded on its own (so each owner decodes only its part).
std::vector<uint8_t> encode_parts(const float* x, size_t n, int k, WireFormat wire,
                                  std::vector<size_t>& counts) {
    counts.assign(k, 0);
    for (int j = 0; j < k; j++) counts[j] = encoded_bytes(wire.codec, part(n, j, k).size());
    std::vector<uint8_t> out;
    for (int j = 0; j < k; j++) {
        const Range r = part(n, j, k);
        const size_t at = out.size();
        out.resize(at + counts[j]);
        if (wire.residual)
            encode_with_feedback(wire.codec, x + r.begin, wire.residual + r.begin, r.size(),
                                 out.data() + at);
        else
            encode(wire.codec, x + r.begin, r.size(), out.data() + at);
    }
    return out;
}

}  // namespace

void SyncStats::add(const SyncStats& other) {
    bytes_sent += other.bytes_sent;
    bytes_received += other.bytes_received;
    seconds += other.seconds;
    wait_seconds += other.wait_seconds;
}

uint64_t island_bytes_sent(size_t n, int k, int shards, int island, Codec codec) {
    uint64_t bytes = 0;
    for (int r = 0; r < shards; r++) {
        const size_t slice = part(n, r, shards).size(), mine = part(slice, island, k).size();
        for (int j = 0; j < k; j++)  // reduce-scatter: the others' sub-slices
            if (j != island) bytes += encoded_bytes(codec, part(slice, j, k).size());
        bytes += (k - 1) * encoded_bytes(codec, mine);  // all-gather: my reduced sub-slice
        bytes += (k - 1) * sizeof(IslandNote);           // my island's weight and loss
    }
    return bytes;
}

OuterSync::OuterSync(IslandComms& comms)
    : comms_(comms), island_(comms.island->split(0, comms.topology.local_rank)) {}

double OuterSync::reduce_slice(Comm& across, float* slice, size_t n, IslandNote mine_note,
                               std::vector<IslandNote>& notes, SyncStats& stats,
                               WireFormat wire) {
    const int k = across.size(), me = across.rank();
    notes.resize(k);
    across.allgatherv(&mine_note, notes.data(), std::vector<size_t>(k, sizeof(IslandNote)));
    stats.bytes_sent += sizeof(IslandNote) * (k - 1);
    stats.bytes_received += sizeof(IslandNote) * (k - 1);
    std::vector<double> weights(k);
    double total = 0;
    for (int i = 0; i < k; i++) {
        weights[i] = notes[i].weight;
        require(weights[i] >= 0, "outer sync: negative island weight");
        total += weights[i];
    }
    if (total == 0) return 0;

    const Range mine = part(n, me, k);
    const size_t mine_bytes = encoded_bytes(wire.codec, mine.size());
    std::vector<size_t> send, recv(k), result_counts(k);
    std::vector<uint8_t> outgoing;
    if (mine_note.weight > 0) outgoing = encode_parts(slice, n, k, wire, send);
    else send.assign(k, 0);
    for (int j = 0; j < k; j++) {
        recv[j] = weights[j] > 0 ? mine_bytes : 0;
        result_counts[j] = encoded_bytes(wire.codec, part(n, j, k).size());
    }
    std::vector<uint8_t> blocks(mine_bytes * k);
    across.alltoallv(outgoing.data(), send, blocks.data(), recv);
    for (int j = 0; j < k; j++) {
        if (j == me) continue;
        stats.bytes_sent += send[j] + result_counts[me];
        stats.bytes_received += recv[j] + result_counts[j];
    }

    std::vector<double> acc(mine.size(), 0.0);
    std::vector<float> decoded(mine.size());
    const uint8_t* block = blocks.data();
    for (int i = 0; i < k; i++) {
        if (weights[i] == 0) continue;
        decode(wire.codec, block, mine.size(), decoded.data());
        for (size_t t = 0; t < mine.size(); t++) acc[t] += (weights[i] / total) * decoded[t];
        block += mine_bytes;
    }
    std::vector<float> reduced(acc.begin(), acc.end());
    std::vector<uint8_t> result(mine_bytes), gathered;
    if (wire.owner_residual)
        encode_with_feedback(wire.codec, reduced.data(), wire.owner_residual + mine.begin,
                             reduced.size(), result.data());
    else
        encode(wire.codec, reduced.data(), reduced.size(), result.data());
    for (size_t c : result_counts) gathered.resize(gathered.size() + c);
    across.allgatherv(result.data(), gathered.data(), result_counts);
    const uint8_t* in = gathered.data();
    for (int j = 0; j < k; j++) {
        const Range r = part(n, j, k);
        decode(wire.codec, in, r.size(), slice + r.begin);
        in += result_counts[j];
    }
    return total;
}

double OuterSync::weighted_mean(float* x, size_t n, IslandNote mine,
                                std::vector<IslandNote>& notes, SyncStats& stats,
                                WireFormat wire) {
    auto start = std::chrono::steady_clock::now();
    const Topology& t = comms_.topology;
    if (mine.weight > 0) {
        const size_t bad = check_finite(x, n);
        require(bad == n, "island " + std::to_string(t.island) + ": the outer gradient holds " +
                              std::to_string(x[bad < n ? bad : 0]) + " at index " +
                              std::to_string(bad) + "; refusing to send it");
    }
    double total = 0;
    if (t.uniform()) {
        const Range slice = part(n, t.local_rank, t.local_size);
        WireFormat mine_wire = wire;
        if (wire.residual) mine_wire.residual = wire.residual + slice.begin;
        if (wire.owner_residual) mine_wire.owner_residual = wire.owner_residual + slice.begin;
        total = reduce_slice(*comms_.cross, x + slice.begin, slice.size(), mine, notes, stats,
                             mine_wire);
        if (t.local_size > 1 && total > 0) {
            std::vector<size_t> counts(t.local_size);
            for (int r = 0; r < t.local_size; r++)
                counts[r] = part(n, r, t.local_size).size() * sizeof(float);
            std::vector<float> mine(x + slice.begin, x + slice.end);  // MPI forbids aliasing
            island_->allgatherv(mine.data(), x, counts);
        }
    } else {
        notes.resize(t.islands);
        if (t.local_rank == 0)
            total = reduce_slice(*comms_.leaders, x, n, mine, notes, stats, wire);
        island_->broadcast(&total, sizeof(total), 0);
        island_->broadcast(notes.data(), notes.size() * sizeof(IslandNote), 0);
        if (total > 0) island_->broadcast(x, n * sizeof(float), 0);
    }
    stats.seconds += seconds_since(start);
    return total;
}

}  // namespace diloco
