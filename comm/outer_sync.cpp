// The cross-island weighted mean: weights are gathered first, then each member of a group
// reduces one sub-slice (alltoallv of encoded blocks in, decode and sum in island order in
// double, encode once, allgatherv out), so every rank decodes the same bytes into the same bits
// and absent islands put no data on the wire.
#include "comm/outer_sync.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <vector>

#include "util/error.h"
#include "util/timer.h"

namespace diloco {

namespace {

struct Range {
    size_t begin, end;
    size_t size() const { return end - begin; }
};

Range part(size_t n, int i, int parts) {
    return {n * static_cast<size_t>(i) / parts, n * static_cast<size_t>(i + 1) / parts};
}

// Values per task of the weighted sum: a task's double accumulators stay in the L1 cache while
// every island's block streams past them once.
constexpr size_t kSumChunk = 2048;

}  // namespace

void OuterSplit::add(const OuterSplit& other) {
    download += other.download;
    codec += other.codec;
    exchange += other.exchange;
    optimizer += other.optimizer;
    upload += other.upload;
}

void SyncStats::add(const SyncStats& other) {
    bytes_sent += other.bytes_sent;
    bytes_received += other.bytes_received;
    seconds += other.seconds;
    wait_seconds += other.wait_seconds;
    split.add(other.split);
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

// This island's k sub-slices, each encoded on its own (so each owner decodes only its part). In
// fp32 the slice is its own message: its sub-slices lie in order, and MPI reads them in place.
const uint8_t* OuterSync::outgoing(const float* x, size_t n, int k, WireFormat wire,
                                   std::vector<size_t>& counts) {
    counts.assign(k, 0);
    for (int j = 0; j < k; j++) counts[j] = encoded_bytes(wire.codec, part(n, j, k).size());
    if (wire.codec == Codec::fp32 && !wire.residual) return reinterpret_cast<const uint8_t*>(x);
    size_t at = 0, bytes = 0;
    for (size_t c : counts) bytes += c;
    encoded_.resize(bytes);
    for (int j = 0; j < k; j++) {
        const Range r = part(n, j, k);
        if (wire.residual)
            encode_with_feedback(wire.codec, x + r.begin, wire.residual + r.begin, r.size(),
                                 encoded_.data() + at);
        else
            encode(wire.codec, x + r.begin, r.size(), encoded_.data() + at);
        at += counts[j];
    }
    return encoded_.data();
}

// out = sum_i scale_i * block_i over the islands with a block (scale > 0), in island order and
// in double, whatever the number of threads; blocks_ holds them back to back.
void OuterSync::sum_blocks(const std::vector<double>& scale, size_t n, WireFormat wire,
                           float* out) {
    const size_t bytes = encoded_bytes(wire.codec, n);
    const uint8_t* block = reinterpret_cast<const uint8_t*>(blocks_.data());
    std::vector<const float*> parts;
    std::vector<double> weights;
    for (double w : scale) {
        if (w == 0) continue;
        weights.push_back(w);
        parts.push_back(blocks_.data() + parts.size() * n);
    }
    if (wire.codec != Codec::fp32) {
        decoded_.resize(parts.size() * n);
        for (size_t i = 0; i < parts.size(); i++) {
            decode(wire.codec, block + i * bytes, n, decoded_.data() + i * n);
            parts[i] = decoded_.data() + i * n;
        }
    }
    const size_t chunks = (n + kSumChunk - 1) / kSumChunk;
#pragma omp parallel for schedule(static) if (n >= 4 * kSumChunk)
    for (size_t c = 0; c < chunks; c++) {
        const size_t begin = c * kSumChunk, len = std::min(kSumChunk, n - begin);
        double acc[kSumChunk] = {};
        for (size_t i = 0; i < parts.size(); i++) {
            const float* x = parts[i] + begin;
            const double w = weights[i];
            for (size_t t = 0; t < len; t++) acc[t] += w * x[t];
        }
        for (size_t t = 0; t < len; t++) out[begin + t] = static_cast<float>(acc[t]);
    }
}

double OuterSync::reduce_slice(Comm& across, Slice slice, IslandNote mine_note,
                               std::vector<IslandNote>& notes, SyncStats& stats, WireFormat wire,
                               const OwnerStep& owner_step) {
    const int k = across.size(), me = across.rank();
    const size_t n = slice.n;
    notes.resize(k);
    timed(stats.split.exchange, [&] {
        across.allgatherv(&mine_note, notes.data(), std::vector<size_t>(k, sizeof(IslandNote)));
    });
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
    std::vector<size_t> send(k, 0), recv(k), result_counts(k);
    const uint8_t* sending = nullptr;
    if (mine_note.weight > 0)
        timed(stats.split.codec, [&] { sending = outgoing(slice.in, n, k, wire, send); });
    for (int j = 0; j < k; j++) {
        recv[j] = weights[j] > 0 ? mine_bytes : 0;
        result_counts[j] = encoded_bytes(wire.codec, part(n, j, k).size());
    }
    blocks_.resize((mine_bytes * k + sizeof(float) - 1) / sizeof(float));
    timed(stats.split.exchange, [&] {
        across.alltoallv(sending, send, reinterpret_cast<uint8_t*>(blocks_.data()), recv);
    });
    for (int j = 0; j < k; j++) {
        if (j == me) continue;
        stats.bytes_sent += send[j] + result_counts[me];
        stats.bytes_received += recv[j] + result_counts[j];
    }

    std::vector<double> scale(k);
    for (int i = 0; i < k; i++) scale[i] = weights[i] / total;
    reduced_.resize(mine.size());
    const uint8_t* result = reinterpret_cast<const uint8_t*>(reduced_.data());
    timed(stats.split.codec, [&] {
        sum_blocks(scale, mine.size(), wire, reduced_.data());
    });
    if (owner_step) {
        require(wire.codec == Codec::fp32 && !wire.owner_residual,
                "outer sync: an owner step needs fp32 on the wire");
        timed(stats.split.optimizer,
              [&] { owner_step(reduced_.data(), slice.offset + mine.begin, mine.size()); });
    }
    timed(stats.split.codec, [&] {
        if (wire.codec == Codec::fp32 && !wire.owner_residual) return;
        result_.resize(mine_bytes);
        if (wire.owner_residual)
            encode_with_feedback(wire.codec, reduced_.data(), wire.owner_residual + mine.begin,
                                 reduced_.size(), result_.data());
        else
            encode(wire.codec, reduced_.data(), reduced_.size(), result_.data());
        result = result_.data();
    });
    if (wire.codec == Codec::fp32) {  // the mean lands where it belongs: nothing to decode
        timed(stats.split.exchange,
              [&] { across.allgatherv(result, slice.out, result_counts); });
        return total;
    }
    size_t gathered_bytes = 0;
    for (size_t c : result_counts) gathered_bytes += c;
    gathered_.resize(gathered_bytes);
    timed(stats.split.exchange,
          [&] { across.allgatherv(result, gathered_.data(), result_counts); });
    timed(stats.split.codec, [&] {
        const uint8_t* in = gathered_.data();
        for (int j = 0; j < k; j++) {
            const Range r = part(n, j, k);
            decode(wire.codec, in, r.size(), slice.out + r.begin);
            in += result_counts[j];
        }
    });
    return total;
}

std::pair<size_t, size_t> OuterSync::own_range(size_t n) const {
    const Topology& t = comms_.topology;
    if (t.uniform()) {
        const Range slice = part(n, t.local_rank, t.local_size);
        return {slice.begin, slice.end};
    }
    return {0, t.local_rank == 0 ? n : 0};  // the leader reduces for its island
}

double OuterSync::weighted_mean(float* x, size_t n, IslandNote mine,
                                std::vector<IslandNote>& notes, SyncStats& stats,
                                WireFormat wire, const OwnerStep& owner_step, float* out) {
    auto start = std::chrono::steady_clock::now();
    const Topology& t = comms_.topology;
    if (!out) out = x;
    const auto [lo, hi] = own_range(n);
    if (mine.weight > 0) {
        size_t bad = hi - lo;
        timed(stats.split.codec, [&] { bad = check_finite(x + lo, hi - lo); });
        require(bad == hi - lo, "island " + std::to_string(t.island) +
                                    ": the outer gradient holds " +
                                    std::to_string(x[lo + (bad < hi - lo ? bad : 0)]) +
                                    " at index " + std::to_string(lo + bad) +
                                    "; refusing to send it");
    }
    double total = 0;
    if (t.uniform()) {
        WireFormat mine_wire = wire;
        if (wire.residual) mine_wire.residual = wire.residual + lo;
        if (wire.owner_residual) mine_wire.owner_residual = wire.owner_residual + lo;
        total = reduce_slice(*comms_.cross, {x + lo, out + lo, lo, hi - lo}, mine, notes, stats,
                             mine_wire, owner_step);
        if (t.local_size > 1 && total > 0)
            timed(stats.split.exchange, [&] { gather_island(out, n); });
    } else {
        notes.resize(t.islands);
        if (t.local_rank == 0)
            total = reduce_slice(*comms_.leaders, {x, out, 0, n}, mine, notes, stats, wire,
                                 owner_step);
        timed(stats.split.exchange, [&] {
            island_->broadcast(&total, sizeof(total), 0);
            island_->broadcast(notes.data(), notes.size() * sizeof(IslandNote), 0);
            if (total > 0) island_->broadcast(out, n * sizeof(float), 0);
        });
    }
    stats.seconds += seconds_since(start);
    return total;
}

// Uniform islands: every rank's slice of x (n values) to every rank of its island.
void OuterSync::gather_island(float* x, size_t n) {
    const Topology& t = comms_.topology;
    std::vector<size_t> counts(t.local_size);
    for (int r = 0; r < t.local_size; r++) counts[r] = part(n, r, t.local_size).size() * sizeof(float);
    const auto [lo, hi] = own_range(n);
    island_part_.assign(x + lo, x + hi);  // MPI forbids aliasing
    island_->allgatherv(island_part_.data(), x, counts);
}

void OuterSync::gather_shares(float* x, size_t n) {
    const Topology& t = comms_.topology;
    const auto [lo, hi] = own_range(n);
    Comm* across = t.uniform() ? comms_.cross.get() : t.local_rank == 0 ? comms_.leaders.get()
                                                                         : nullptr;
    if (across) {  // the owners of the slice's parts, as reduce_slice cut it
        const int k = across->size();
        std::vector<size_t> counts(k);
        for (int j = 0; j < k; j++) counts[j] = part(hi - lo, j, k).size() * sizeof(float);
        const Range mine = part(hi - lo, across->rank(), k);
        island_part_.assign(x + lo + mine.begin, x + lo + mine.end);
        across->allgatherv(island_part_.data(), x + lo, counts);
    }
    if (t.uniform() && t.local_size > 1) gather_island(x, n);
    if (!t.uniform()) island_->broadcast(x, n * sizeof(float), 0);
}

}  // namespace diloco
