// The world of a build without MPI: one process, one island, one rank.
// Multi-island runs need the MPI build; this keeps every command usable without it.
#include <cstdlib>

#include "comm/solo_comm.h"

namespace diloco {

std::unique_ptr<Comm> world_comm(int*, char***) { return std::make_unique<SoloComm>(); }

void abort_world(int code) { std::exit(code); }

}  // namespace diloco
