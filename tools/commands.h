// The `diloco` subcommands: each file registers one on the CLI11 app and runs it.
// Registration only parses; the work happens in the callback, after all options are known.
#pragma once

#include <CLI/CLI.hpp>

#include "comm/comm.h"

namespace diloco {

// For unsigned options (seeds): CLI11 would take "-1" as 2^64 - 1.
inline CLI::Validator not_negative() {
    return CLI::Validator(
        [](const std::string& text) {
            return text.starts_with('-') ? std::string("must not be negative, got " + text)
                                         : std::string();
        },
        "", "NOT_NEGATIVE");
}

void add_train_command(CLI::App& app, Comm& world);
void add_generate_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_prepare_command(CLI::App& app);
void add_tokenizer_command(CLI::App& app);
void add_plan_command(CLI::App& app);
void add_supervise_command(CLI::App& app);

}  // namespace diloco
