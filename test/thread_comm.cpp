// Collectives between threads: every call publishes its buffers at the hub, meets the others at
// a barrier, reads what it needs, and meets them again before anyone may reuse a buffer.
#include "test/thread_comm.h"

#include <algorithm>
#include <barrier>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

namespace diloco::test {

namespace {

struct Hub {
    explicit Hub(int n) : size(n), meet(n), sends(n), counts(n), colors(n) {}
    int size;
    std::barrier<> meet;
    std::vector<const void*> sends;
    std::vector<const std::vector<size_t>*> counts;
    std::vector<std::pair<int, int>> colors;  // (color, key) of a split
    std::mutex mutex;
    std::map<int, std::shared_ptr<Hub>> children;  // of the split in progress, by color
};

size_t offset_of(const std::vector<size_t>& counts, int upto) {
    size_t at = 0;
    for (int i = 0; i < upto; i++) at += counts[i];
    return at;
}

class ThreadComm : public Comm {
public:
    ThreadComm(std::shared_ptr<Hub> hub, int rank) : hub_(std::move(hub)), rank_(rank) {}
    int rank() const override { return rank_; }
    int size() const override { return hub_->size; }

    void allreduce_sum(float* data, size_t n) override { sum(data, n); }
    void allreduce_sum(double* data, size_t n) override { sum(data, n); }
    void broadcast(void* data, size_t bytes, int root) override {
        publish(data, nullptr);
        if (rank_ != root) std::memcpy(data, hub_->sends[root], bytes);
        hub_->meet.arrive_and_wait();
    }
    void allgatherv(const void* send, void* recv, const std::vector<size_t>& counts) override {
        publish(send, nullptr);
        for (int r = 0; r < size(); r++)
            std::memcpy(static_cast<char*>(recv) + offset_of(counts, r), hub_->sends[r],
                        counts[r]);
        hub_->meet.arrive_and_wait();
    }
    void alltoallv(const void* send, const std::vector<size_t>& send_counts, void* recv,
                   const std::vector<size_t>& recv_counts) override {
        publish(send, &send_counts);
        for (int r = 0; r < size(); r++) {
            const std::vector<size_t>& theirs = *hub_->counts[r];
            if (theirs[rank_] != recv_counts[r]) throw std::runtime_error("alltoallv: counts differ");
            std::memcpy(static_cast<char*>(recv) + offset_of(recv_counts, r),
                        static_cast<const char*>(hub_->sends[r]) + offset_of(theirs, rank_),
                        recv_counts[r]);
        }
        hub_->meet.arrive_and_wait();
    }
    void barrier() override { hub_->meet.arrive_and_wait(); }
    std::unique_ptr<Comm> split(int color, int key) override {
        hub_->colors[rank_] = {color, key};
        hub_->meet.arrive_and_wait();
        std::vector<int> members;  // world ranks of my color, ordered by key then rank
        for (int r = 0; r < size(); r++)
            if (hub_->colors[r].first == color) members.push_back(r);
        std::stable_sort(members.begin(), members.end(), [&](int a, int b) {
            return hub_->colors[a].second < hub_->colors[b].second;
        });
        std::shared_ptr<Hub> child;
        {
            std::lock_guard<std::mutex> lock(hub_->mutex);
            auto& slot = hub_->children[color];
            if (!slot) slot = std::make_shared<Hub>(static_cast<int>(members.size()));
            child = slot;
        }
        hub_->meet.arrive_and_wait();
        if (rank_ == 0) hub_->children.clear();  // every rank holds its child by now
        hub_->meet.arrive_and_wait();
        const int mine = static_cast<int>(std::find(members.begin(), members.end(), rank_) -
                                          members.begin());
        return std::make_unique<ThreadComm>(child, mine);
    }
    std::string host() const override { return "localhost"; }
    NodePlace node_place() override { return {rank_, size()}; }

private:
    void publish(const void* send, const std::vector<size_t>* counts) {
        hub_->sends[rank_] = send;
        hub_->counts[rank_] = counts;
        hub_->meet.arrive_and_wait();
    }
    template <typename T>
    void sum(T* data, size_t n) {
        publish(data, nullptr);
        std::vector<T> total(n, T(0));
        for (int r = 0; r < size(); r++)  // in rank order: every rank gets the same bits
            for (size_t i = 0; i < n; i++) total[i] += static_cast<const T*>(hub_->sends[r])[i];
        hub_->meet.arrive_and_wait();
        std::copy(total.begin(), total.end(), data);
    }
    std::shared_ptr<Hub> hub_;
    int rank_;
};

}  // namespace

void run_ranks(int ranks, const std::function<void(Comm& world)>& body) {
    auto hub = std::make_shared<Hub>(ranks);
    std::vector<std::exception_ptr> errors(ranks);
    std::vector<std::thread> threads;
    for (int r = 0; r < ranks; r++)
        threads.emplace_back([&, r] {
            ThreadComm world(hub, r);
            try {
                body(world);
            } catch (...) {
                errors[r] = std::current_exception();
            }
        });
    for (std::thread& t : threads) t.join();
    for (const std::exception_ptr& e : errors)
        if (e) std::rethrow_exception(e);
}

}  // namespace diloco::test
