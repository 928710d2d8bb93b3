// Entry point of the `diloco` command line: starts the world (MPI under mpirun), builds the
// subcommands, and turns every Error into a one-line message and a non-zero exit.
#include <cstdio>
#include <sstream>
#include <string>

#include "comm/comm.h"
#include "comm/ranks.h"
#include "comm/solo_comm.h"
#include "tools/commands.h"
#include "util/error.h"

int main(int argc, char** argv) {
    // `supervise` starts mpirun itself: an MPI singleton's environment would turn that mpirun
    // into a job nested in this one, so it never starts MPI.
    const bool supervise = argc > 1 && std::string(argv[1]) == "supervise";
    std::unique_ptr<diloco::Comm> world = supervise ? std::make_unique<diloco::SoloComm>()
                                                    : diloco::world_comm(&argc, &argv);
    CLI::App app{"diloco: train decoder-only transformers across islands with DiLoCo"};
    app.require_subcommand(1);
    diloco::add_train_command(app, *world);
    diloco::add_generate_command(app);
    diloco::add_eval_command(app);
    diloco::add_prepare_command(app);
    diloco::add_tokenizer_command(app);
    diloco::add_plan_command(app);
    diloco::add_supervise_command(app);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        std::ostringstream quiet;  // usage errors are the same everywhere: rank 0 says it
        if (e.get_exit_code() == 0)  // --help
            return world->rank() == 0 ? app.exit(e) : app.exit(e, quiet, quiet);
        // A usage error is one line, as every other error.
        if (world->rank() == 0) std::fprintf(stderr, "diloco: error: %s\n", e.what());
        return e.get_exit_code();
    } catch (const diloco::AgreedExit&) {
        return 1;
    } catch (const diloco::Error& e) {
        if (world->rank() == 0) std::fprintf(stderr, "diloco: error: %s\n", e.what());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "diloco: internal error on rank %d: %s\n", world->rank(), e.what());
        diloco::abort_world(2);
    }
    return 0;
}
