// What `--data` names, opened: nothing (the built-in fortunes corpus), a text file (bytes), or
// token shards from `diloco prepare`; shared by `diloco train` and `diloco eval`.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "data/shard_data.h"
#include "data/train_data.h"

namespace diloco {

// The island, island count and sequence length in `stream` matter to token shards only; byte
// corpora take their validation tail from stream.val_fraction and check stream.seq.
std::unique_ptr<TrainData> open_data(const std::string& path, const ShardDataOptions& stream);

// --data and --val-fraction, as train and eval take them.
void add_data_options(CLI::App& cmd, std::string& path, double& val_fraction);

}  // namespace diloco
