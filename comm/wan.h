// A simulated wide-area link between islands: a Comm that runs each collective for real, then
// waits as long as this rank's bytes would take over a link of given bandwidth and latency.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "comm/comm.h"

namespace diloco {

// One rank's link to the others (`--wan-gbps`, `--wan-latency-ms`). Every collective pays the
// latency once and its bytes at the bandwidth; gbps 0 is unlimited bandwidth.
struct WanLink {
    double gbps = 0;
    double latency_ms = 0;
    bool active() const { return gbps > 0 || latency_ms > 0; }
};

// A negative or non-finite field is an Error naming its option.
void validate(const WanLink& link);

// latency + bytes * 8 / bandwidth, in seconds.
double wan_delay_seconds(const WanLink& link, uint64_t bytes_sent);

// Bytes one rank sends to the others in each collective, as the usual algorithms move them:
//   allgatherv     its own block to each of the size - 1 others;
//   alltoallv      every block but the one addressed to itself;
//   allreduce_sum  a ring all-reduce, a reduce-scatter then an all-gather, each moving
//                  (size - 1) / size of the buffer: 2 (size - 1) * bytes / size, multiplied
//                  before dividing so that it is exact when size divides the buffer;
//   broadcast      the root sends the buffer to each other rank, the others send nothing;
//   barrier        nothing: it costs the latency alone.
// A communicator of one rank has no link and adds no delay. Not thread-safe: one thread at a
// time (which may be a background one) runs its collectives.
class WanComm : public Comm {
public:
    WanComm(std::unique_ptr<Comm> inner, WanLink link);

    int rank() const override { return inner_->rank(); }
    int size() const override { return inner_->size(); }
    void allreduce_sum(float* data, size_t n) override;
    void allreduce_sum(double* data, size_t n) override;
    void broadcast(void* data, size_t bytes, int root) override;
    void allgatherv(const void* send, void* recv, const std::vector<size_t>& counts) override;
    void alltoallv(const void* send, const std::vector<size_t>& send_counts, void* recv,
                   const std::vector<size_t>& recv_counts) override;
    void barrier() override;
    // The new communicator has the same link and counts its own delay.
    std::unique_ptr<Comm> split(int color, int key) override;
    std::string host() const override { return inner_->host(); }
    NodePlace node_place() override { return inner_->node_place(); }
    void extend_deadline(double seconds) override { inner_->extend_deadline(seconds); }

    // Total simulated delay so far (the nominal one, not the measured sleep); safe to read from
    // another thread while a collective runs.
    double added_seconds() const { return added_seconds_.load(std::memory_order_relaxed); }

private:
    uint64_t ring_allreduce_bytes(uint64_t bytes) const;
    void wait_for_link(uint64_t bytes_sent);

    std::unique_ptr<Comm> inner_;
    WanLink link_;
    std::atomic<double> added_seconds_ = 0;
};

}  // namespace diloco
