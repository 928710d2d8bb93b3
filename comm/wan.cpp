// The simulated WAN link: the delay formula, option checks, and the Comm wrapper that sleeps
// after each collective until the link would have carried this rank's bytes.
#include "comm/wan.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <thread>

#include "util/error.h"

namespace diloco {

namespace {

void require_rate(double value, const char* option, const char* meaning) {
    char got[32];
    std::snprintf(got, sizeof got, "%g", value);
    require(std::isfinite(value) && value >= 0,
            std::string(option) + " must be a finite number >= 0 (" + meaning + "), got " + got);
}

}  // namespace

void validate(const WanLink& link) {
    require_rate(link.gbps, "--wan-gbps", "Gbit/s, 0: unlimited");
    require_rate(link.latency_ms, "--wan-latency-ms", "milliseconds per collective");
}

double wan_delay_seconds(const WanLink& link, uint64_t bytes_sent) {
    double transfer = link.gbps > 0 ? double(bytes_sent) * 8 / (link.gbps * 1e9) : 0;
    return link.latency_ms / 1000 + transfer;
}

WanComm::WanComm(std::unique_ptr<Comm> inner, WanLink link)
    : inner_(std::move(inner)), link_(link) {
    validate(link_);
}

uint64_t WanComm::ring_allreduce_bytes(uint64_t bytes) const {
    uint64_t p = uint64_t(size());
    return 2 * (p - 1) * bytes / p;
}

// The link's delay comes on top of the real collective: the deadline counts from its return.
void WanComm::wait_for_link(uint64_t bytes_sent) {
    if (size() <= 1 || !link_.active()) return;
    double seconds = wan_delay_seconds(link_, bytes_sent);
    auto until = std::chrono::steady_clock::now() +
                 std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                     std::chrono::duration<double>(seconds));
    std::this_thread::sleep_until(until);
    added_seconds_.fetch_add(seconds, std::memory_order_relaxed);
}

void WanComm::allreduce_sum(float* data, size_t n) {
    inner_->allreduce_sum(data, n);
    wait_for_link(ring_allreduce_bytes(n * sizeof(float)));
}

void WanComm::allreduce_sum(double* data, size_t n) {
    inner_->allreduce_sum(data, n);
    wait_for_link(ring_allreduce_bytes(n * sizeof(double)));
}

void WanComm::broadcast(void* data, size_t bytes, int root) {
    inner_->broadcast(data, bytes, root);
    wait_for_link(rank() == root ? uint64_t(bytes) * uint64_t(size() - 1) : 0);
}

void WanComm::allgatherv(const void* send, void* recv, const std::vector<size_t>& counts) {
    inner_->allgatherv(send, recv, counts);
    wait_for_link(uint64_t(counts.at(rank())) * uint64_t(size() - 1));
}

void WanComm::alltoallv(const void* send, const std::vector<size_t>& send_counts, void* recv,
                        const std::vector<size_t>& recv_counts) {
    inner_->alltoallv(send, send_counts, recv, recv_counts);
    uint64_t total = std::accumulate(send_counts.begin(), send_counts.end(), uint64_t(0));
    wait_for_link(total - send_counts.at(rank()));
}

void WanComm::barrier() {
    inner_->barrier();
    wait_for_link(0);
}

std::unique_ptr<Comm> WanComm::split(int color, int key) {
    return std::make_unique<WanComm>(inner_->split(color, key), link_);
}

}  // namespace diloco
