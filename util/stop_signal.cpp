// Stop signals as a flag read at step boundaries, and alarm() as the bound on how long a
// stopping process may take: both async-signal-safe, so no thread watches.
#include "util/stop_signal.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <initializer_list>

namespace diloco {

namespace {

std::atomic<int> requested{0};
std::atomic<bool> keeping{false};
unsigned grace = 30;

void on_stop_signal(int sig) {
    requested.store(sig);
    if (!keeping.load()) alarm(grace);
}

}  // namespace

void catch_stop_signals(unsigned grace_s) {
    grace = grace_s;
    struct sigaction action = {};
    action.sa_handler = on_stop_signal;
    action.sa_flags = SA_RESTART;  // a write under way goes on rather than failing with EINTR
    sigemptyset(&action.sa_mask);
    for (int sig : {SIGTERM, SIGINT}) sigaction(sig, &action, nullptr);
}

int stop_signal() { return requested.load(); }

const char* stop_signal_name() {
    switch (requested.load()) {
        case SIGTERM: return "SIGTERM";
        case SIGINT: return "SIGINT";
        default: return "no signal";
    }
}

KeepingProgress::KeepingProgress() {
    keeping.store(true);
    alarm(0);
}

KeepingProgress::~KeepingProgress() {
    keeping.store(false);
    if (requested.load()) alarm(grace);
}

}  // namespace diloco
