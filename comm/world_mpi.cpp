// The MPI communicator: MPI_COMM_WORLD and its splits, with every return code checked.
// Byte counts go to MPI as int, so each message is checked to fit (2 GiB per rank and call).
#include <mpi.h>

#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "comm/comm.h"
#include "util/error.h"
#include "util/stop_signal.h"

namespace diloco {

namespace {

void check_mpi(int rc, const char* what) {
    if (rc == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, text, &len);
    throw Error(std::string("MPI ") + what + " failed: " + std::string(text, len));
}

int as_int(size_t count, const char* what) {
    require(count <= static_cast<size_t>(INT_MAX), [&] {  // every collective
        return std::string("MPI ") + what + ": message of " + std::to_string(count) +
               " bytes exceeds the 2 GiB per-call limit";
    });
    return static_cast<int>(count);
}

std::vector<int> displacements(const std::vector<int>& counts) {
    std::vector<int> d(counts.size(), 0);
    long long at = 0;
    for (size_t i = 0; i < counts.size(); i++) {
        require(at <= INT_MAX, "MPI: displacement exceeds the 2 GiB limit");
        d[i] = static_cast<int>(at);
        at += counts[i];
    }
    return d;
}

std::vector<int> int_counts(const std::vector<size_t>& counts, const char* what) {
    std::vector<int> c;
    for (size_t n : counts) c.push_back(as_int(n, what));
    return c;
}

class MpiComm : public Comm {
public:
    explicit MpiComm(MPI_Comm comm, bool owned) : comm_(comm), owned_(owned) {
        check_mpi(MPI_Comm_rank(comm_, &rank_), "Comm_rank");
        check_mpi(MPI_Comm_size(comm_, &size_), "Comm_size");
    }
    ~MpiComm() override {
        if (owned_) MPI_Comm_free(&comm_);
    }
    int rank() const override { return rank_; }
    int size() const override { return size_; }

    void allreduce_sum(float* data, size_t n) override {
        MPI_Request r;
        check_mpi(MPI_Iallreduce(MPI_IN_PLACE, data, as_int(n * 4, "Allreduce") / 4, MPI_FLOAT,
                                 MPI_SUM, comm_, &r),
                  "Allreduce");
        finish(r, "Allreduce");
    }
    void allreduce_sum(double* data, size_t n) override {
        MPI_Request r;
        check_mpi(MPI_Iallreduce(MPI_IN_PLACE, data, as_int(n * 8, "Allreduce") / 8, MPI_DOUBLE,
                                 MPI_SUM, comm_, &r),
                  "Allreduce");
        finish(r, "Allreduce");
    }
    void broadcast(void* data, size_t bytes, int root) override {
        MPI_Request r;
        check_mpi(MPI_Ibcast(data, as_int(bytes, "Bcast"), MPI_BYTE, root, comm_, &r), "Bcast");
        finish(r, "Bcast");
    }
    void allgatherv(const void* send, void* recv, const std::vector<size_t>& counts) override {
        std::vector<int> c = int_counts(counts, "Allgatherv"), d = displacements(c);
        MPI_Request r;
        check_mpi(MPI_Iallgatherv(send, c[rank_], MPI_BYTE, recv, c.data(), d.data(), MPI_BYTE,
                                  comm_, &r),
                  "Allgatherv");
        finish(r, "Allgatherv");
    }
    void alltoallv(const void* send, const std::vector<size_t>& send_counts, void* recv,
                   const std::vector<size_t>& recv_counts) override {
        std::vector<int> sc = int_counts(send_counts, "Alltoallv"), sd = displacements(sc);
        std::vector<int> rc = int_counts(recv_counts, "Alltoallv"), rd = displacements(rc);
        MPI_Request r;
        check_mpi(MPI_Ialltoallv(send, sc.data(), sd.data(), MPI_BYTE, recv, rc.data(), rd.data(),
                                 MPI_BYTE, comm_, &r),
                  "Alltoallv");
        finish(r, "Alltoallv");
    }
    void barrier() override {
        MPI_Request r;
        check_mpi(MPI_Ibarrier(comm_, &r), "Barrier");
        finish(r, "Barrier");
    }
    void set_deadline(double seconds, const std::vector<int>& island_of_world_rank) override {
        deadline_s_ = seconds;
        island_of_world_rank_ = island_of_world_rank;
    }
    void extend_deadline(double seconds) override { extension_s_ = seconds; }
    std::unique_ptr<Comm> split(int color, int key) override {
        MPI_Comm sub;
        check_mpi(MPI_Comm_split(comm_, color, key, &sub), "Comm_split");
        return std::make_unique<MpiComm>(sub, true);
    }
    bool threads_concurrent() const override {
        int provided = MPI_THREAD_SINGLE;
        check_mpi(MPI_Query_thread(&provided), "Query_thread");
        return provided == MPI_THREAD_MULTIPLE;
    }
    std::string host() const override {
        char name[MPI_MAX_PROCESSOR_NAME];
        int len = 0;
        check_mpi(MPI_Get_processor_name(name, &len), "Get_processor_name");
        return std::string(name, len);
    }
    NodePlace node_place() override {
        MPI_Comm node;
        check_mpi(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node),
                  "Comm_split_type");
        MpiComm on_node(node, true);
        return {on_node.rank(), on_node.size()};
    }

private:
    // Completes collective r; under a deadline, no longer than it. Each rank also tells every
    // other that it has arrived (a one-byte message tagged with the call's number), so that
    // a call past its deadline names the ranks that never came: dead, stuck or cut off.
    void finish(MPI_Request& r, const char* what) {
        if (deadline_s_ <= 0) {
            check_mpi(MPI_Wait(&r, MPI_STATUS_IGNORE), what);
            return;
        }
        const int tag = 1 + static_cast<int>(calls_++ % 30000);
        std::vector<MPI_Request> arrivals;
        std::vector<int> from;
        static const char kHere = 1;
        std::vector<char> heard(size_);
        for (int p = 0; p < size_; p++) {
            if (p == rank_) continue;
            arrivals.emplace_back();
            check_mpi(MPI_Isend(&kHere, 1, MPI_BYTE, p, tag, comm_, &arrivals.back()), what);
            arrivals.emplace_back();
            check_mpi(MPI_Irecv(&heard[p], 1, MPI_BYTE, p, tag, comm_, &arrivals.back()), what);
            from.push_back(p);
        }
        // While waiting, answer other ranks' pings: a rank past its deadline asks who is
        // still alive when everyone arrived and the collective stalls all the same.
        char ping_byte = 0;
        MPI_Request ping;
        std::vector<MPI_Request> pongs;
        check_mpi(MPI_Irecv(&ping_byte, 1, MPI_BYTE, MPI_ANY_SOURCE, kPingTag, comm_, &ping), what);
        const auto deadline = std::chrono::steady_clock::now() +
                              std::chrono::duration<double>(deadline_s_ + extension_s_);
        for (int done = 0; !done;) {
            check_mpi(MPI_Test(&r, &done, MPI_STATUS_IGNORE), what);
            int pinged = 0;
            MPI_Status from_rank;
            check_mpi(MPI_Test(&ping, &pinged, &from_rank), what);
            if (pinged) {
                pongs.emplace_back();
                check_mpi(MPI_Isend(&kHere, 1, MPI_BYTE, from_rank.MPI_SOURCE, kPongTag, comm_,
                                    &pongs.back()),
                          what);
                check_mpi(MPI_Irecv(&ping_byte, 1, MPI_BYTE, MPI_ANY_SOURCE, kPingTag, comm_,
                                    &ping),
                          what);
            }
            if (!done && std::chrono::steady_clock::now() > deadline)
                throw Interrupted(missing(arrivals, from, what));
            // A stop asked while waiting on other islands: the caller keeps what it can.
            if (!done && stop_signal())
                throw Interrupted(std::string("MPI ") + what + " across islands: stopped by " +
                            stop_signal_name() + " while waiting for the other islands");
            // MPI moves a long message only inside its calls (MPI_Test here): a sleep between
            // them would leave the link idle and cost a transfer bandwidth. Yielding instead
            // keeps it moving and still lets a rank that shares the core compute.
            if (!done) std::this_thread::yield();
        }
        check_mpi(MPI_Cancel(&ping), what);
        check_mpi(MPI_Wait(&ping, MPI_STATUS_IGNORE), what);
        arrivals.insert(arrivals.end(), pongs.begin(), pongs.end());
        check_mpi(MPI_Waitall(static_cast<int>(arrivals.size()), arrivals.data(),
                              MPI_STATUSES_IGNORE),
                  what);
    }

    // The peers in `from` that answer no ping within a second.
    std::vector<int> silent(const std::vector<int>& from, const char* what) {
        static const char kPing = 1;
        std::vector<MPI_Request> sent(from.size()), answers(from.size());
        std::vector<char> answer(from.size());
        for (size_t i = 0; i < from.size(); i++) {
            check_mpi(MPI_Isend(&kPing, 1, MPI_BYTE, from[i], kPingTag, comm_, &sent[i]), what);
            check_mpi(MPI_Irecv(&answer[i], 1, MPI_BYTE, from[i], kPongTag, comm_, &answers[i]),
                      what);
        }
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
        std::vector<int> quiet;
        while (std::chrono::steady_clock::now() < until)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        for (size_t i = 0; i < from.size(); i++) {
            int answered = 0;
            check_mpi(MPI_Test(&answers[i], &answered, MPI_STATUS_IGNORE), what);
            if (!answered) quiet.push_back(from[i]);
        }
        return quiet;
    }

    // "MPI Allreduce: no answer within 600 s from world rank 3 (island 3)": the ranks whose
    // arrival message has not come.
    std::string missing(std::vector<MPI_Request>& arrivals, const std::vector<int>& from,
                        const char* what) {
        MPI_Group mine, world;
        check_mpi(MPI_Comm_group(comm_, &mine), what);
        check_mpi(MPI_Comm_group(MPI_COMM_WORLD, &world), what);
        std::vector<int> absent;
        for (size_t i = 0; i < from.size(); i++) {
            int arrived = 0;
            check_mpi(MPI_Test(&arrivals[2 * i + 1], &arrived, MPI_STATUS_IGNORE), what);
            if (!arrived) absent.push_back(from[i]);
        }
        // Everyone came, yet the call stalls: who stopped inside it answers no ping.
        const bool inside = absent.empty();
        if (inside) absent = silent(from, what);
        std::string names;
        for (int rank : absent) {
            int world_rank = 0;
            check_mpi(MPI_Group_translate_ranks(mine, 1, &rank, world, &world_rank), what);
            names += (names.empty() ? "" : ", ") + ("world rank " + std::to_string(world_rank));
            if (world_rank < static_cast<int>(island_of_world_rank_.size()))
                names += " (island " + std::to_string(island_of_world_rank_[world_rank]) + ")";
        }
        if (inside && !names.empty()) names += ", which came and then stopped answering";
        MPI_Group_free(&mine);
        MPI_Group_free(&world);
        char seconds[32];
        std::snprintf(seconds, sizeof seconds, "%g", deadline_s_ + extension_s_);
        return std::string("MPI ") + what + " across islands: no answer within " + seconds +
               " s (--sync-timeout) from " +
               (names.empty() ? "a rank that came and answers, yet the call stalls" : names);
    }

    MPI_Comm comm_;
    bool owned_;
    int rank_ = 0, size_ = 1;
    // Tags above the arrival messages' 1..30000.
    static constexpr int kPingTag = 30001, kPongTag = 30002;
    double deadline_s_ = 0;  // 0: wait as long as it takes
    double extension_s_ = 0;
    std::vector<int> island_of_world_rank_;
    uint64_t calls_ = 0;
};

void finalize_at_exit() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
}

}  // namespace

std::unique_ptr<Comm> world_comm(int* argc, char*** argv) {
    int initialized = 0;
    check_mpi(MPI_Initialized(&initialized), "Initialized");
    if (!initialized) {
        // Overlapped outer syncs run collectives on a worker thread beside training's.
        int provided = MPI_THREAD_SINGLE;
        check_mpi(MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided), "Init_thread");
        std::atexit(finalize_at_exit);
    }
    // Errors come back as codes so that check_mpi can name the call and throw.
    check_mpi(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN), "Comm_set_errhandler");
    return std::make_unique<MpiComm>(MPI_COMM_WORLD, false);
}

void abort_world(int code) {
    int initialized = 0, finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    if (initialized && !finalized) MPI_Abort(MPI_COMM_WORLD, code);
    std::exit(code);
}

}  // namespace diloco
