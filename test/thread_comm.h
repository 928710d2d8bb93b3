// An in-process communicator for tests: ranks are threads meeting at a shared hub, so the outer
// sync, its codecs and its byte counts can be checked with many islands without mpirun.
#pragma once

#include <functional>
#include <memory>

#include "comm/comm.h"

namespace diloco::test {

// Runs body(world) on `ranks` threads, each with its own rank of one world communicator, and
// rethrows the first exception any of them threw (after all have finished).
void run_ranks(int ranks, const std::function<void(Comm& world)>& body);

}  // namespace diloco::test
