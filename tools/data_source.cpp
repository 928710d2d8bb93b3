// Opens what `--data` names: the built-in corpus when it is empty, token shards when it names
// a directory, a manifest or a .bin, and otherwise a text file read as bytes.
#include "tools/data_source.h"

#include "data/byte_corpus.h"

namespace diloco {

std::unique_ptr<TrainData> open_data(const std::string& path, const ShardDataOptions& stream) {
    if (path.empty())
        return std::make_unique<ByteCorpus>(ByteCorpus::builtin(stream.val_fraction, stream.seq));
    if (!is_shard_data(path))
        return std::make_unique<ByteCorpus>(
            ByteCorpus::from_file(path, stream.val_fraction, stream.seq));
    return ShardData::open(path, stream);
}

}  // namespace diloco
