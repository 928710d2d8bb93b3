// TOML run configs for subcommands: `--config FILE` sets any option of the subcommand by its
// long name (without dashes), at the top or under a [section] that groups keys for the reader;
// options given on the command line win over the file.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace diloco {

// Adds --config to cmd; call apply_config_file from the subcommand's callback, first.
CLI::Option* add_config_option(CLI::App& cmd, std::string& path);
// Errors name the file: unknown keys, values that do not convert, unreadable files.
void apply_config_file(CLI::App& cmd, const std::string& path);

}  // namespace diloco
