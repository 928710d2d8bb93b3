// The cross-island reduction of DiLoCo: a weighted mean of one fp32 vector per island, sharded
// so that rank r of every island reduces slice r, on the wire in any codec, summed in fp32+.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "comm/codec.h"
#include "comm/topology.h"

namespace diloco {

// Where an outer step's time goes, in seconds: the island's parameters off the device,
// encoding, decoding and summing, the collectives, the outer optimizer, the result back.
struct OuterSplit {
    double download = 0, codec = 0, exchange = 0, optimizer = 0, upload = 0;
    double total() const { return download + codec + exchange + optimizer + upload; }
    void add(const OuterSplit& other);
};

struct SyncStats {
    uint64_t bytes_sent = 0;      // by this rank to other islands, as passed to MPI
    uint64_t bytes_received = 0;  // by this rank from other islands
    double seconds = 0;           // the sync's duration, from first message to result
    double wait_seconds = 0;      // of which training stood still waiting for it
    OuterSplit split;             // outer steps: codec and exchange here, the rest by the loop
    void add(const SyncStats& other);
};

// What each island says about itself at a sync: its weight (0: absent) and a note (its loss).
struct IslandNote {
    double weight = 0;
    double loss = 0;
};

// How a vector travels: the codec, and optionally the codec's error fed back into the next
// round, on both of its encodings: the island's (residual) and the sub-slice owner's, of the
// mean (owner_residual). Both are vectors aligned with the data, kept by the caller.
struct WireFormat {
    Codec codec = Codec::fp32;
    float* residual = nullptr;
    float* owner_residual = nullptr;
};

// Run by the rank that reduces values [begin, begin + n) of the vector (its share) on their
// weighted mean, before the mean goes out to the other ranks: it may replace them (the outer
// step's new parameters), and every rank receives what it leaves there, exactly.
using OwnerStep = std::function<void(float* values, size_t begin, size_t n)>;

class OuterSync {
public:
    // Collective over the world: the sync gets its own duplicate of the island communicator,
    // so that it may run on another thread while training averages gradients on the island's.
    explicit OuterSync(IslandComms& comms);

    // Replaces x (n floats, the same on every rank of an island) by sum_i w_i x_i / sum_i w_i
    // over islands, identical on every rank of the world. Each island's x is encoded once per
    // destination; the owner of a sub-slice decodes, sums in double and encodes the result once
    // for the gather, which every rank (the owner too) decodes. An island with weight 0 sends
    // no data and receives the result. A non-finite value is an Error naming the island.
    // notes gets every island's note. Returns sum_i w_i (0: x is left unchanged).
    // Only x[own_range(n)] is read: the island's ranks hold the same x and share the work.
    // The result goes to out (x when null), all n values of it on every rank. With owner_step
    // (fp32 on the wire only) each owner steps its share before the gather.
    double weighted_mean(float* x, size_t n, IslandNote mine, std::vector<IslandNote>& notes,
                         SyncStats& stats, WireFormat wire = {}, const OwnerStep& owner_step = {},
                         float* out = nullptr);
    // The part of an n-value vector that this rank reads and sends.
    std::pair<size_t, size_t> own_range(size_t n) const;
    // Collective: every rank's x (n values) becomes the values each owner holds of its share in
    // weighted_mean (the outer state that owner steps moved on their ranks alone).
    void gather_shares(float* x, size_t n);

private:
    struct Slice {
        float *in, *out;
        size_t offset, n;  // of the slice in the whole vector
    };
    double reduce_slice(Comm& across, Slice slice, IslandNote mine,
                        std::vector<IslandNote>& notes, SyncStats& stats, WireFormat wire,
                        const OwnerStep& owner_step);
    void gather_island(float* x, size_t n);
    const uint8_t* outgoing(const float* slice, size_t n, int k, WireFormat wire,
                            std::vector<size_t>& counts);
    void sum_blocks(const std::vector<double>& scale, size_t n, WireFormat wire, float* out);
    IslandComms& comms_;
    std::unique_ptr<Comm> island_;
    // Kept from sync to sync: the outer step of a large model moves hundreds of megabytes, and
    // fresh buffers would cost their page faults every time.
    std::vector<uint8_t> encoded_, result_, gathered_;
    std::vector<float> blocks_, decoded_, reduced_, island_part_;  // blocks_: any codec's bytes
};

// Bytes that island `island` of k sends to the others in one weighted_mean of n values
// when every island takes part and is split into `shards` ranks (1 on the leader path):
// about 2 (k - 1) / k of the encoded vector, as a ring all-reduce, plus the notes.
uint64_t island_bytes_sent(size_t n, int k, int shards, int island, Codec codec = Codec::fp32);

}  // namespace diloco
