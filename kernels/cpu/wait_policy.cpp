// Compiled into every executable that links diloco_core: OpenMP's idle threads sleep instead of
// spinning, unless OMP_WAIT_POLICY says otherwise.
#include <cstdlib>

namespace {

// A spinning thread holds its core between the ops' parallel loops; on a machine shared with
// other work, the core it holds is the one the next loop's other thread is waiting for, and two
// threads end up slower than one. Waking a sleeping thread costs microseconds per loop.
void wait_passively(int, char**, char**) { setenv("OMP_WAIT_POLICY", "passive", 0); }

}  // namespace

// The libraries' constructors (libgomp's reads the policy) run after the executable's
// .preinit_array, so the default is in place before OpenMP starts.
__attribute__((section(".preinit_array"), used)) void (*const diloco_wait_passively)(
    int, char**, char**) = wait_passively;
