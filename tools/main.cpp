// Entry point of the `diloco` command line: builds the subcommands and turns every Error into
// a one-line message on stderr and exit code 1 (CLI11 usage errors keep their own codes).
#include <cstdio>

#include "tools/commands.h"
#include "util/error.h"

int main(int argc, char** argv) {
    CLI::App app{"diloco: train decoder-only transformers across islands with DiLoCo"};
    app.require_subcommand(1);
    diloco::add_train_command(app);
    diloco::add_generate_command(app);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    } catch (const diloco::Error& e) {
        std::fprintf(stderr, "diloco: error: %s\n", e.what());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "diloco: internal error: %s\n", e.what());
        return 2;
    }
    return 0;
}
