// A stop asked by a signal (SIGTERM from mpirun or a supervisor, SIGINT from a person): training
// ends at a step boundary and keeps what it can, instead of dying in the middle of a write.
#pragma once

namespace diloco {

// Installs SIGTERM and SIGINT handlers that only note the request. A process that has not
// exited `grace_s` seconds later (a rank blocked on a peer that is gone) is ended by SIGALRM,
// unless it is writing what the stop keeps (see KeepingProgress).
void catch_stop_signals(unsigned grace_s);
// The signal that asked for a stop, or 0.
int stop_signal();
// "SIGTERM", "SIGINT".
const char* stop_signal_name();

// While one lives, the grace is suspended: a save in progress is not cut short. Afterwards the
// grace starts again when a stop was asked.
class KeepingProgress {
public:
    KeepingProgress();
    ~KeepingProgress();
    KeepingProgress(const KeepingProgress&) = delete;
    KeepingProgress& operator=(const KeepingProgress&) = delete;
};

}  // namespace diloco
