// The `diloco` subcommands: each file registers one on the CLI11 app and runs it.
// Registration only parses; the work happens in the callback, after all options are known.
#pragma once

#include <CLI/CLI.hpp>
#include <utility>
#include <vector>
#include <string>

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

// An enum option: one of the names `name` gives the values (CLI11's IsMember: another word is
// an error listing them), then CLI11's transform to the value; the help shows the default by
// its name.
template <typename E, typename Values>
CLI::Option* add_enum_option(CLI::App& cmd, const std::string& flag, E& value,
                             const Values& values, const char* (*name)(E),
                             const std::string& help) {
    std::vector<std::pair<std::string, E>> names;
    for (E v : values) names.push_back({name(v), v});
    return cmd.add_option(flag, value, help)
        ->transform(CLI::Transformer(names).description(""))
        ->transform(CLI::IsMember(names))
        ->default_str(name(value));
}

void add_train_command(CLI::App& app, Comm& world);
void add_generate_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_prepare_command(CLI::App& app);
void add_tokenizer_command(CLI::App& app);
void add_plan_command(CLI::App& app);
void add_supervise_command(CLI::App& app);

}  // namespace diloco
