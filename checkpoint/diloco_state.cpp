// DiLoCo checkpoints: the outer state's file (moments, fragment counters as an I32 tensor,
// every island's data position) and the collective save and resume of a DilocoLoop, which
// survive a change in the number of islands.
#include "checkpoint/diloco_state.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "checkpoint/writer.h"
#include "comm/topology.h"
#include "model/checkpoint.h"
#include "optim/diloco.h"
#include "util/error.h"
#include "util/parse.h"
#include "util/safetensors.h"

namespace diloco {

namespace {

// 2: fragment counters as the I32 tensor `fragments` (1 kept them as comma-joined text).
const char* kOuterVersion = "2";
const char* kPositionKey = "data_position.";

int meta_count(const SafetensorsFile& f, const std::string& key) {
    int v = -1;
    require(parse_int(f.meta(key), v) && v >= 0,
            f.path() + ": metadata '" + key + "' is not a count: '" + f.meta(key) + "'");
    return v;
}

}  // namespace

std::string outer_state_file(const std::string& dir) { return dir + "/outer.safetensors"; }

std::string island_dir(const std::string& dir, int island) {
    return dir + "/island-" + std::to_string(island);
}

std::string island_state_file(const std::string& dir, int island) {
    return island_dir(dir, island) + "/state.safetensors";
}

std::string residual_file(const std::string& dir, int island, int local_rank) {
    return island_dir(dir, island) + "/residual-" + std::to_string(local_rank) + ".safetensors";
}

void write_outer_state(const std::string& file, const OuterState& s) {
    std::map<std::string, std::string> meta = {{"outer_version", kOuterVersion},
                                               {"diloco_step", std::to_string(s.step)},
                                               {"mode", s.mode},
                                               {"islands", std::to_string(s.islands)}};
    for (const auto& [island, position] : s.data_positions)
        meta[kPositionKey + std::to_string(island)] = std::to_string(position);
    std::string ids;
    for (int id : s.island_ids) ids += (ids.empty() ? "" : ",") + std::to_string(id);
    if (!ids.empty()) meta["island_ids"] = ids;
    std::vector<int32_t> counters;
    for (const FragmentCounters& f : s.fragments)
        counters.insert(counters.end(), {f.syncs, f.outer_steps, f.inner_steps});
    const int64_t n = static_cast<int64_t>(s.m.size()), frags = int64_t(s.fragments.size());
    std::vector<TensorToWrite> tensors = {{"outer.m", {n}, s.m.data()},
                                          {"fragments", {frags, 3}, counters.data(), "I32"}};
    if (!s.v.empty()) tensors.push_back({"outer.v", {n}, s.v.data()});
    write_safetensors(file, tensors, meta);
}

OuterState read_outer_state(const std::string& file, size_t n, bool adam, int fragments) {
    SafetensorsFile f = SafetensorsFile::read(file);
    require(f.metadata().count("outer_version") && f.meta("outer_version") == kOuterVersion,
            file + ": outer state of another diloco version (this one reads version " +
                kOuterVersion + "); resume it with the diloco that saved it");
    OuterState s;
    s.mode = f.meta("mode");
    s.step = meta_count(f, "diloco_step");
    s.islands = meta_count(f, "islands");
    require(s.islands >= 1, file + ": islands '0' is not a number of islands");
    const bool given = f.metadata().count("island_ids") > 0;
    s.island_ids = parse_island_ids(given ? f.meta("island_ids") : "", s.islands,
                                    file + ": metadata island_ids");
    f.require_only(adam ? std::vector<std::string>{"outer.m", "outer.v", "fragments"}
                        : std::vector<std::string>{"outer.m", "fragments"});
    s.m.resize(n);
    f.read_f32("outer.m", {int64_t(n)}, s.m.data());
    if (adam) {
        s.v.resize(n);
        f.read_f32("outer.v", {int64_t(n)}, s.v.data());
    }
    auto saved = f.entries().find("fragments");
    if (saved != f.entries().end() && saved->second.shape.size() == 2)
        require(saved->second.shape[0] == fragments,
                file + ": saved with " + std::to_string(saved->second.shape[0]) +
                    " fragments, this run has " + std::to_string(fragments));
    std::vector<int32_t> counters(size_t(fragments) * 3);
    f.read_i32("fragments", {fragments, 3}, counters.data());
    for (int i = 0; i < fragments; i++) {
        const int32_t* c = counters.data() + 3 * i;
        require(c[0] >= 0 && c[1] >= 0 && c[2] >= 0,
                file + ": fragment " + std::to_string(i) + " has a negative counter");
        s.fragments.push_back({c[0], c[1], c[2]});
    }
    for (const auto& [key, value] : f.metadata()) {
        if (!key.starts_with(kPositionKey)) continue;
        int island = -1;
        uint64_t position = 0;
        require(parse_int(key.substr(std::string(kPositionKey).size()), island) && island >= 0 &&
                    parse_u64(value, position),
                file + ": bad " + key + " '" + value + "'");
        s.data_positions[island] = position;
    }
    return s;
}

void write_residuals(const std::string& file, const std::vector<float>& residual,
                     const std::vector<float>& owner_residual) {
    const int64_t n = static_cast<int64_t>(residual.size());
    write_safetensors(file, {{"residual", {n}, residual.data()},
                             {"owner_residual", {n}, owner_residual.data()}},
                      {});
}

void read_residuals(const std::string& file, std::vector<float>& residual,
                    std::vector<float>& owner_residual) {
    SafetensorsFile f = SafetensorsFile::read(file);
    const int64_t n = static_cast<int64_t>(residual.size());
    f.read_f32("residual", {n}, residual.data());
    f.read_f32("owner_residual", {n}, owner_residual.data());
}

// Which rank writes what: world rank 0 the global model and the outer state (with every
// island's data position, gathered over the leaders), each island's leader its AdamW state
// (and in local mode its own model), every rank its codec residuals.
std::function<void(const std::string&)> DilocoLoop::snapshot() {
    const Topology& t = comms_.topology;
    require(pending_.empty(), "cannot save while an outer sync is in flight");
    gather_outer_state();
    const std::map<std::string, std::string> meta = {
        {"diloco_step", std::to_string(inner_.steps_taken())}};
    std::vector<double> positions(t.islands, 0.0);  // by island, not id
    if (t.local_rank == 0) {
        positions[t.island] = static_cast<double>(inner_.data_position());
        comms_.leaders->allreduce_sum(positions.data(), t.islands);
    }
    const int id = t.island_id();
    std::vector<std::function<void(const std::string&)>> writers;
    const GptConfig config = inner_.model().config();
    if (t.world_rank == 0) {
        OuterState s{mode_name(config_.mode), inner_.steps_taken(), t.islands, outer_.moment1(),
                     outer_.moment2(), {}, known_positions_, t.island_ids};
        for (const Fragment& f : fragments_) s.fragments.push_back(f.count);
        for (int i = 0; i < t.islands; i++)
            s.data_positions[t.island_ids[i]] = uint64_t(positions[i]);
        writers.push_back([config, meta, params = global_params(), s](const std::string& dir) {
            save_model(dir, config, params, meta);
            write_outer_state(outer_state_file(dir), s);
        });
    }
    if (t.local_rank == 0) {
        if (own_models_)
            writers.push_back([config, meta, id, params = inner_.model().get_params()](
                                  const std::string& dir) {
                save_model(island_dir(dir, id), config, params, meta);
            });
        writers.push_back([id, state = inner_.state_writer()](const std::string& dir) {
            std::filesystem::create_directories(island_dir(dir, id));
            state(island_state_file(dir, id));
        });
    }
    if (!residual_.empty())
        writers.push_back([island = id, rank = t.local_rank, residual = residual_,
                           owner = owner_residual_](const std::string& dir) {
            std::filesystem::create_directories(island_dir(dir, island));
            write_residuals(residual_file(dir, island, rank), residual, owner);
        });
    return [writers](const std::string& dir) {
        for (const auto& write : writers) write(dir);
    };
}

void DilocoLoop::save(const std::string& dir) {
    snapshot()(dir);
    comms_.world->barrier();  // nobody reads or moves on before every file is in place
}

void DilocoLoop::resume(const std::string& dir) {
    const Topology& t = comms_.topology;
    resumed_ = true;
    const int weights_step = inner_.load_weights(dir);  // first: is it this model at all?
    inner_.model().read_params(global_.data(), 0, global_.size());  // in place: it is pinned
    const std::string file = outer_state_file(dir);
    OuterState s = read_outer_state(file, global_.size(), !outer_.moment2().empty(),
                                    static_cast<int>(fragments_.size()));
    require(s.mode == mode_name(config_.mode),
            file + ": saved in mode " + s.mode + ", this run is " + mode_name(config_.mode));
    require(weights_step == s.step, dir + ": model and outer state come from different saves");
    outer_.set_state(s.m, s.v);
    last_outer_step_ = s.step;
    for (size_t f = 0; f < fragments_.size(); f++) fragments_[f].count = s.fragments[f];
    known_positions_ = s.data_positions;

    const int id = t.island_id();
    const bool as_saved = t.island_ids == s.island_ids;  // the same islands, in the same order
    const std::string idir = island_dir(dir, id), state = island_state_file(dir, id);
    if (std::filesystem::exists(state)) {
        if (own_models_ && as_saved)
            inner_.load_weights(idir);
        inner_.load_state(state);
        require(inner_.steps_taken() == s.step,
                idir + ": island state comes from a different save than " + dir);
        // Each rank's slice of the codec's residual, when the islands are as they were.
        const std::string residuals = residual_file(dir, id, t.local_rank);
        if (!residual_.empty() && as_saved && std::filesystem::exists(residuals))
            read_residuals(residuals, residual_, owner_residual_);
        const std::string progress = keeps_progress() ? newest_progress(dir, id) : "";
        if (!progress.empty()) {
            load_progress(progress, s.step);
            if (t.local_rank == 0)
                std::fprintf(stderr, "diloco: island %d resumes its progress at step %d (%s)\n",
                             id, inner_.steps_taken(), progress.c_str());
        }
    } else {
        // A new island: global parameters, fresh moments, its own stream where it left off.
        const bool saved = std::ranges::find(s.island_ids, id) != s.island_ids.end();
        if (saved && t.local_rank == 0)
            std::fprintf(stderr,
                         "diloco: %s holds no state of island %d (its rank failed before "
                         "writing it): the island starts again from the global model with "
                         "fresh AdamW moments\n",
                         dir.c_str(), id);
        inner_.set_step(s.step);
        auto known = known_positions_.find(id);
        inner_.set_data_position(known == known_positions_.end() ? 0 : known->second);
    }
}

bool DilocoLoop::keeps_progress() const {
    return syncs_ && config_.fragments == 1 && config_.overlap == 0;
}

bool DilocoLoop::has_progress() const {
    return keeps_progress() && comms_.topology.local_rank == 0 &&
           inner_.steps_taken() > last_outer_step_;
}

// The round's sums come from before a sync that failed, or from the steps since the last one.
void DilocoLoop::write_progress(const std::string& dir) {
    const Fragment& round = pending_.empty() ? fragments_[0] : pending_.front().round;
    save_model(dir, inner_.model().config(), inner_.model().get_params(),
               {{"diloco_step", std::to_string(inner_.steps_taken())},
                {"base_step", std::to_string(last_outer_step_)},
                {"round_loss", exact_decimal(round.loss)},
                {"round_seconds", exact_decimal(round.seconds)}});
    inner_.save_state(dir + "/state.safetensors");
}

void DilocoLoop::load_progress(const std::string& dir, int base) {
    std::map<std::string, std::string> meta;
    const int step = inner_.load_weights(dir, &meta);
    int base_step = -1;
    Fragment& round = fragments_[0];
    require(parse_int(meta["base_step"], base_step) && base_step == base &&
                parse_double(meta["round_loss"], round.loss) &&
                parse_double(meta["round_seconds"], round.seconds),
            dir + ": not the progress of an island past step " + std::to_string(base) +
                " (metadata base_step, round_loss, round_seconds)");
    require(step > base && step <= base + config_.inner_steps,
            dir + ": step " + std::to_string(step) + " is not within the round after step " +
                std::to_string(base) + " (H = " + std::to_string(config_.inner_steps) + ")");
    inner_.load_state(dir + "/state.safetensors");
    require(inner_.steps_taken() == step, dir + ": parameters and state come from different steps");
    round.count.inner_steps = step - base;
}

}  // namespace diloco
