// The MPI communicator: MPI_COMM_WORLD and its splits, with every return code checked.
// Byte counts go to MPI as int, so each message is checked to fit (2 GiB per rank and call).
#include <mpi.h>

#include <climits>
#include <cstdlib>

#include "comm/comm.h"
#include "util/error.h"

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
    require(count <= static_cast<size_t>(INT_MAX),
            std::string("MPI ") + what + ": message of " + std::to_string(count) +
                " bytes exceeds the 2 GiB per-call limit");
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
        check_mpi(MPI_Allreduce(MPI_IN_PLACE, data, as_int(n * 4, "Allreduce") / 4, MPI_FLOAT,
                                MPI_SUM, comm_),
                  "Allreduce");
    }
    void allreduce_sum(double* data, size_t n) override {
        check_mpi(MPI_Allreduce(MPI_IN_PLACE, data, as_int(n * 8, "Allreduce") / 8, MPI_DOUBLE,
                                MPI_SUM, comm_),
                  "Allreduce");
    }
    void broadcast(void* data, size_t bytes, int root) override {
        check_mpi(MPI_Bcast(data, as_int(bytes, "Bcast"), MPI_BYTE, root, comm_), "Bcast");
    }
    void allgatherv(const void* send, void* recv, const std::vector<size_t>& counts) override {
        std::vector<int> c = int_counts(counts, "Allgatherv"), d = displacements(c);
        check_mpi(MPI_Allgatherv(send, c[rank_], MPI_BYTE, recv, c.data(), d.data(), MPI_BYTE,
                                 comm_),
                  "Allgatherv");
    }
    void alltoallv(const void* send, const std::vector<size_t>& send_counts, void* recv,
                   const std::vector<size_t>& recv_counts) override {
        std::vector<int> sc = int_counts(send_counts, "Alltoallv"), sd = displacements(sc);
        std::vector<int> rc = int_counts(recv_counts, "Alltoallv"), rd = displacements(rc);
        check_mpi(MPI_Alltoallv(send, sc.data(), sd.data(), MPI_BYTE, recv, rc.data(), rd.data(),
                                MPI_BYTE, comm_),
                  "Alltoallv");
    }
    void barrier() override { check_mpi(MPI_Barrier(comm_), "Barrier"); }
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
    MPI_Comm comm_;
    bool owned_;
    int rank_ = 0, size_ = 1;
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
