// A Hugging Face model directory's tensors, single file or sharded, strictly: every name in
// the index is in its shard and every tensor of a shard is in the index.
#include "model/hf_weights.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "util/error.h"
#include "util/files.h"
#include "util/json_file.h"

namespace diloco {

namespace {

constexpr const char* kPrefix = "transformer.";

std::string unprefixed(const std::string& name) {
    return name.starts_with(kPrefix) ? name.substr(std::char_traits<char>::length(kPrefix)) : name;
}

// The index's weight_map grouped by shard file name, in the order the files first appear.
std::vector<std::pair<std::string, std::vector<std::string>>> read_index(const std::string& path) {
    const nlohmann::json index = read_json_file(path, kMaxJsonFileBytes);
    require(index.is_object() && index.contains("weight_map") && index["weight_map"].is_object(),
            path + ": no \"weight_map\" object of tensor name -> shard file");
    std::vector<std::pair<std::string, std::vector<std::string>>> shards;
    for (const auto& [name, file] : index["weight_map"].items()) {
        require(file.is_string(), path + ": weight_map['" + name + "'] is not a file name");
        const std::string shard = file.get<std::string>();
        require(!shard.empty() && shard.find('/') == std::string::npos && shard != "..",
                path + ": weight_map['" + name + "'] = '" + shard +
                    "' is not a file name in this directory");
        auto it = std::find_if(shards.begin(), shards.end(),
                               [&](const auto& s) { return s.first == shard; });
        if (it == shards.end()) it = shards.insert(shards.end(), {shard, {}});
        it->second.push_back(name);
    }
    require(!shards.empty(), path + ": the weight_map is empty");
    return shards;
}

}  // namespace

HfWeights HfWeights::open(const std::string& dir) {
    const std::string single = dir + "/model.safetensors";
    const std::string index = dir + "/model.safetensors.index.json";
    const bool has_single = path_kind(single) != PathKind::kMissing;
    const bool has_index = path_kind(index) != PathKind::kMissing;
    require(!(has_single && has_index),
            dir + ": holds both model.safetensors and model.safetensors.index.json; keep one");
    require(has_single || has_index,
            dir + ": no model.safetensors or model.safetensors.index.json");
    HfWeights w;
    if (has_single) {
        w.source_ = single;
        w.add_file(SafetensorsFile::read(single));
        return w;
    }
    w.source_ = index;
    for (const auto& [shard, listed] : read_index(index)) {
        SafetensorsFile file = SafetensorsFile::read(dir + "/" + shard);
        for (const std::string& name : listed)
            require(file.entries().count(name) > 0,
                    file.path() + ": missing tensor '" + name + "' (listed in " + index + ")");
        for (const auto& [name, entry] : file.entries())
            require(std::find(listed.begin(), listed.end(), name) != listed.end(),
                    file.path() + ": tensor '" + name + "' is not in " + index);
        w.add_file(std::move(file));
    }
    return w;
}

void HfWeights::add_file(SafetensorsFile file) {
    for (const auto& [stored, entry] : file.entries()) {
        const std::string name = unprefixed(stored);
        if (tensors_.count(name))
            throw Error(file.path() + ": tensor '" + stored + "' is also " + describe(name));
        tensors_[name] = {files_.size(), stored};
    }
    files_.push_back(std::move(file));
}

std::vector<std::string> HfWeights::names() const {
    std::vector<std::string> names;
    for (const auto& [name, where] : tensors_) names.push_back(name);
    return names;
}

std::string HfWeights::describe(const std::string& name) const {
    const Location& at = tensors_.at(name);
    return files_[at.file].path() + ": tensor '" + at.stored + "'";
}

const HfWeights::Location& HfWeights::find(const std::string& name) const {
    auto it = tensors_.find(name);
    require(it != tensors_.end(), source_ + ": missing tensor '" + name + "'");
    return it->second;
}

void HfWeights::check(const std::string& name, const std::vector<int64_t>& shape) const {
    const Location& at = find(name);
    files_[at.file].checked(at.stored, {"F32", "F16", "BF16"}, shape);
}

void HfWeights::read(const std::string& name, const std::vector<int64_t>& shape,
                     float* out) const {
    const Location& at = find(name);
    files_[at.file].read_as_f32(at.stored, shape, out);
}

}  // namespace diloco
