// The communicator of a single process: gathers and exchanges are copies of one block.
// Its host name is the machine's, so `--islands host` works the same without MPI.
#include "comm/solo_comm.h"

#include <unistd.h>

#include <cstring>

#include "comm/topology.h"
#include "util/error.h"

namespace diloco {

void SoloComm::allgatherv(const void* send, void* recv, const std::vector<size_t>& counts) {
    require(counts.size() == 1, "allgatherv: one count expected in a one-rank communicator");
    if (send != recv) std::memmove(recv, send, counts[0]);
}

void SoloComm::alltoallv(const void* send, const std::vector<size_t>& send_counts, void* recv,
                         const std::vector<size_t>& recv_counts) {
    require(send_counts.size() == 1 && recv_counts.size() == 1 &&
                send_counts[0] == recv_counts[0],
            "alltoallv: mismatched counts in a one-rank communicator");
    if (send != recv) std::memmove(recv, send, send_counts[0]);
}

std::string SoloComm::host() const {
    char name[256] = {};
    gethostname(name, sizeof(name) - 1);
    return name;
}

NodePlace SoloComm::node_place() { return launcher_node_place(); }

}  // namespace diloco
