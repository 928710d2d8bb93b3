// Fuzz target: a TOML run config applied to a command with options of every kind that
// `diloco` commands use (integers, floats, strings, lists, flags).
#include <CLI/CLI.hpp>

#include "fuzz/harness.h"
#include "tools/config_file.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace diloco;
    const std::string path = fuzz::scratch_file("run.toml", fuzz::as_text(data, size));
    CLI::App app("fuzz");
    CLI::App* cmd = app.add_subcommand("train");
    std::string config, preset, islands;
    int steps = 0, batch = 0;
    uint64_t seed = 0;
    float lr = 0;
    double drop = 0;
    bool flag = false;
    std::vector<std::string> inputs;
    add_config_option(*cmd, config);
    cmd->add_option("--preset", preset);
    cmd->add_option("--islands", islands);
    cmd->add_option("--steps", steps);
    cmd->add_option("--batch", batch);
    cmd->add_option("--seed", seed);
    cmd->add_option("--lr", lr);
    cmd->add_option("--drop-prob", drop);
    cmd->add_flag("--weight-by-tokens", flag);
    cmd->add_option("--inputs", inputs);
    try {
        apply_config_file(*cmd, path);
    } catch (const Error&) {
    }
    return 0;
}
