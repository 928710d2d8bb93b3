// The tensors of a Hugging Face model directory: model.safetensors, or the shards listed by
// model.safetensors.index.json; names with or without transformers' "transformer." prefix.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "util/safetensors.h"

namespace diloco {

class HfWeights {
public:
    // Reads the index (if any) and every file it names; Errors name the file and the problem:
    // malformed index, missing shard, a tensor the index and its shard disagree on, a name twice.
    static HfWeights open(const std::string& dir);

    // Tensor names without the prefix.
    std::vector<std::string> names() const;
    bool contains(const std::string& name) const { return tensors_.count(name) > 0; }
    // "FILE: tensor 'STORED NAME'", for messages about a tensor.
    std::string describe(const std::string& name) const;
    // An Error naming the file unless tensor name is there as F32, F16 or BF16 with this shape.
    void check(const std::string& name, const std::vector<int64_t>& shape) const;
    // Tensor name (F32, F16 or BF16, exactly this shape) as F32.
    void read(const std::string& name, const std::vector<int64_t>& shape, float* out) const;
    // The first file's metadata (a checkpoint of ours: the step it was saved at).
    const std::map<std::string, std::string>& metadata() const { return files_.front().metadata(); }

private:
    struct Location {
        size_t file;
        std::string stored;  // the name in the file
    };
    void add_file(SafetensorsFile file);
    // Where tensor name is; an Error naming the source when nowhere.
    const Location& find(const std::string& name) const;
    std::string source_;  // model.safetensors or the index, for "missing tensor" messages
    std::vector<SafetensorsFile> files_;
    std::map<std::string, Location> tensors_;
};

}  // namespace diloco
