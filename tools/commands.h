// The `diloco` subcommands: each file registers one on the CLI11 app and runs it.
// Registration only parses; the work happens in the callback, after all options are known
// (train's after main has started the world).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <utility>
#include <vector>
#include <string>

#include "comm/comm.h"

namespace diloco {

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

// Training, once its options are parsed and checked: main starts the world (MPI) only then, so
// that a refused option costs no MPI start.
using TrainJob = std::function<void(Comm&)>;
void add_train_command(CLI::App& app, TrainJob& job);
void add_generate_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_prepare_command(CLI::App& app);
void add_tokenizer_command(CLI::App& app);
void add_plan_command(CLI::App& app);
void add_supervise_command(CLI::App& app);

}  // namespace diloco
