// Entry point of the `diloco` command line: builds the subcommands, reads and checks the options,
// starts the world (MPI under mpirun) for training, and turns every Error into a one-line message
// and a non-zero exit.
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <memory>
#include <sstream>
#include <string>

#include "comm/comm.h"
#include "comm/ranks.h"
#include "tools/commands.h"
#include "tools/options.h"
#include "util/error.h"

namespace {

// This process's rank as the launcher gives it (mpirun, Slurm), for errors found before the world
// starts: a usage error is the same on every rank, and rank 0 says it.
bool first_rank() {
    for (const char* name : {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"})
        if (const char* rank = std::getenv(name)) return std::string(rank) == "0";
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"diloco: train decoder-only transformers across islands with DiLoCo"};
    app.require_subcommand(1);
    diloco::TrainJob train;
    diloco::add_train_command(app, train);
    diloco::add_generate_command(app);
    diloco::add_eval_command(app);
    diloco::add_prepare_command(app);
    diloco::add_tokenizer_command(app);
    diloco::add_plan_command(app);
    diloco::add_supervise_command(app);
    diloco::refuse_empty_values(app);
    // Every option is read and checked before MPI starts; every command but train runs here,
    // without MPI (supervise must not be an MPI singleton: its mpirun would nest in it).
    std::unique_ptr<diloco::Comm> world;
    auto says = [&] { return world ? world->rank() == 0 : first_rank(); };
    try {
        app.parse(argc, argv);
        if (train) {
            world = diloco::world_comm(&argc, &argv);
            train(*world);
        }
    } catch (const CLI::ParseError& e) {
        std::ostringstream quiet;
        if (e.get_exit_code() == 0)  // --help
            return says() ? app.exit(e) : app.exit(e, quiet, quiet);
        // A usage error is one line, as every other error.
        if (says()) std::fprintf(stderr, "diloco: error: %s\n", e.what());
        return e.get_exit_code();
    } catch (const diloco::AgreedExit&) {
        return 1;
    } catch (const diloco::Error& e) {
        if (says()) std::fprintf(stderr, "diloco: error: %s\n", e.what());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "diloco: internal error on rank %d: %s\n", world ? world->rank() : 0,
                     e.what());
        diloco::abort_world(2);
    }
    return 0;
}
