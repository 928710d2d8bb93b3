// Error handling across ranks: agreed exits for setup, abort for failures mid-run.
// Messages keep the single-process form ("diloco: error: ...") when the world has one rank.
#include "comm/ranks.h"

#include <cstdio>
#include <string>

#include "util/error.h"

namespace diloco {

static void print_error(Comm& world, const std::string& message, bool with_rank) {
    if (with_rank && world.size() > 1)
        std::fprintf(stderr, "diloco: error on rank %d: %s\n", world.rank(), message.c_str());
    else
        std::fprintf(stderr, "diloco: error: %s\n", message.c_str());
    std::fflush(stderr);
}

void run_agreed(Comm& world, const std::function<void()>& work) {
    std::string message;
    try {
        work();
    } catch (const Error& e) {
        message = e.what();
    }
    double failed = message.empty() ? 0 : 1;
    world.allreduce_sum(&failed, 1);
    if (failed == 0) return;
    const bool everyone = failed == world.size();
    if (everyone ? world.rank() == 0 : !message.empty()) print_error(world, message, !everyone);
    throw AgreedExit();
}

void run_or_abort(Comm& world, const std::function<void()>& work) {
    try {
        work();
    } catch (const Error& e) {
        print_error(world, e.what(), true);
        if (world.size() > 1) abort_world(1);
        throw AgreedExit();
    }
}

}  // namespace diloco
