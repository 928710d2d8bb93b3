// Opens what `--data` names: the built-in corpus when it is empty, token shards when it names
// a directory, a manifest or a .bin, and otherwise a text file read as bytes.
#include "tools/data_source.h"

#include "data/byte_corpus.h"
#include "tools/options.h"

namespace diloco {

std::unique_ptr<TrainData> open_data(const std::string& path, const ShardDataOptions& stream) {
    if (path.empty())
        return std::make_unique<ByteCorpus>(ByteCorpus::builtin(stream.val_fraction, stream.seq));
    if (!is_shard_data(path))
        return std::make_unique<ByteCorpus>(
            ByteCorpus::from_file(path, stream.val_fraction, stream.seq));
    return ShardData::open(path, stream);
}

void add_data_options(CLI::App& cmd, std::string& path, double& val_fraction) {
    cmd.add_option("--data", path,
                   "a text file (bytes), or token shards from `diloco prepare` (a directory, "
                   "its manifest.json, or a .bin); default: the built-in fortunes corpus");
    add_number(cmd, "--val-fraction", val_fraction,
               {.min = 0, .max = 1, .min_open = true, .max_open = true},
               "held-out tail of a text file or .bin for validation");
}

}  // namespace diloco
