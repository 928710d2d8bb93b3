// The DiLoCo loop: gradient averaging inside an island (and across islands for ddp), the outer
// step every H inner steps with island presence from a schedule and seeded drop-out, and
// checkpoints that survive a change in the number of islands.
#include "optim/diloco.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <sstream>

#include "model/checkpoint.h"
#include "util/error.h"
#include "util/parse.h"
#include "util/rng.h"
#include "util/safetensors.h"

namespace diloco {

namespace {

const char* kOuterFile = "/outer.safetensors";

std::string island_dir(const std::string& dir, int island) {
    return dir + "/island-" + std::to_string(island);
}

int parse_count(const std::string& text, const std::string& what) {
    int v = -1;
    require(parse_int(text, v) && v >= 0, what + ": '" + text + "' is not a count");
    return v;
}

// "FROM-TO:I+J" -> (from, to, islands); outer steps are 1-based and inclusive.
struct ScheduleEntry {
    int from, to;
    std::vector<int> islands;
};

std::vector<ScheduleEntry> parse_schedule(const std::string& spec) {
    std::vector<ScheduleEntry> entries;
    std::stringstream in(spec);
    const std::string what = "--island-schedule";
    for (std::string item; std::getline(in, item, ',');) {
        size_t dash = item.find('-'), colon = item.find(':');
        require(dash != std::string::npos && colon != std::string::npos && dash < colon,
                what + ": '" + item + "' is not FROM-TO:ISLAND+ISLAND...");
        ScheduleEntry e{parse_count(item.substr(0, dash), what),
                        parse_count(item.substr(dash + 1, colon - dash - 1), what), {}};
        std::stringstream ids(item.substr(colon + 1));
        for (std::string id; std::getline(ids, id, '+');) {
            const int island = parse_count(id, what);
            require(std::find(e.islands.begin(), e.islands.end(), island) == e.islands.end(),
                    what + ": '" + item + "' names island " + id + " twice");
            e.islands.push_back(island);
        }
        require(e.from >= 1 && e.from <= e.to && !e.islands.empty(),
                what + ": '" + item + "' needs 1 <= FROM <= TO and at least one island");
        entries.push_back(e);
    }
    return entries;
}

}  // namespace

Mode parse_mode(const std::string& name) {
    if (name == "local") return Mode::local;
    if (name == "ddp") return Mode::ddp;
    if (name == "diloco") return Mode::diloco;
    throw Error("--mode '" + name + "': expected local, ddp or diloco");
}

const char* mode_name(Mode mode) {
    switch (mode) {
        case Mode::local: return "local";
        case Mode::ddp: return "ddp";
        case Mode::diloco: return "diloco";
    }
    return "?";
}

std::vector<bool> islands_present(const DilocoConfig& config, int islands, int outer_step) {
    std::vector<bool> present(islands, true);
    for (const ScheduleEntry& e : parse_schedule(config.island_schedule)) {
        if (outer_step < e.from || outer_step > e.to) continue;
        present.assign(islands, false);
        for (int i : e.islands) {
            require(i < islands, "--island-schedule names island " + std::to_string(i) +
                                     " but there are " + std::to_string(islands));
            present[i] = true;
        }
    }
    for (int i = 0; i < islands && config.drop_prob > 0; i++) {
        Rng rng(config.seed ^ 0xD50Bu, (uint64_t(outer_step) << 20) + i);
        if (rng.uniform() < config.drop_prob) present[i] = false;
    }
    return present;
}

void validate(const DilocoConfig& c, int layers) {
    require(c.inner_steps > 0,
            "--inner-steps must be positive (H = " + std::to_string(c.inner_steps) + ")");
    require(c.drop_prob >= 0 && c.drop_prob < 1, "--drop-prob must be in [0, 1)");
    require(c.prune >= 0 && c.prune < 1, "--outer-prune must be in [0, 1)");
    require(c.fragments >= 1 && c.fragments <= layers && c.fragments <= c.inner_steps,
            "--fragments " + std::to_string(c.fragments) + " must be in 1.." +
                std::to_string(std::min(layers, c.inner_steps)) + " (layers and H)");
    // One sync in flight at a time: it is merged before the next fragment's starts.
    const int spacing = c.inner_steps / c.fragments;
    require(c.overlap >= 0 && c.overlap < spacing,
            "--overlap " + std::to_string(c.overlap) + " must be in 0.." +
                std::to_string(spacing - 1) + " (below H / fragments)");
    require(c.merge_alpha >= 0 && c.merge_alpha <= 1, "--merge-alpha must be in [0, 1]");
    parse_schedule(c.island_schedule);
}

std::vector<std::pair<size_t, size_t>> fragment_ranges(const ParamLayout& layout, int fragments) {
    const int layers = static_cast<int>(layout.blocks.size());
    require(fragments >= 1 && fragments <= layers, "fragments must be in 1..layers");
    std::vector<std::pair<size_t, size_t>> ranges;
    for (int f = 0; f < fragments; f++) {
        const int first = f * layers / fragments, next = (f + 1) * layers / fragments;
        ranges.push_back({f == 0 ? 0 : layout.blocks[first].ln1_w,
                          next == layers ? layout.total : layout.blocks[next].ln1_w});
    }
    return ranges;
}

DilocoLoop::DilocoLoop(InnerTrainer& inner, IslandComms& comms, const DilocoConfig& config)
    : comms_(comms), inner_(inner), config_(config), sync_(comms),
      outer_(config.outer, inner.model().num_params()),
      global_(inner.model().get_params()) {
    validate(config, inner.model().config().layers);
    require(config.overlap == 0 || comms.world->threads_concurrent(),
            "--overlap needs an MPI library with MPI_THREAD_MULTIPLE");
    if (config.error_feedback) {
        residual_.assign(global_.size(), 0.0f);
        owner_residual_.assign(global_.size(), 0.0f);
    }
    const auto ranges = fragment_ranges(inner.model().layout(), config.fragments);
    for (int f = 0; f < config.fragments; f++) {
        Fragment frag;
        frag.range = {ranges[f].first, ranges[f].second, 0};
        frag.offset = f * config.inner_steps / config.fragments;
        fragments_.push_back(frag);
    }
    const Topology& t = comms.topology;
    if (t.local_size > 1 || (config.mode == Mode::ddp && t.islands > 1))
        inner_.set_grad_reducer([this](void* grads, size_t n) { reduce_gradients(grads, n); });
}

DilocoLoop::~DilocoLoop() {
    for (PendingSync& p : pending_)
        if (p.done.valid()) p.done.wait();  // the worker writes into p
}

void DilocoLoop::reduce_gradients(void* grads, size_t n) {
    const Topology& t = comms_.topology;
    const bool on_device = t.local_size > 1 && island_average_;
    const bool across = config_.mode == Mode::ddp && t.islands > 1;
    if (on_device) island_average_(grads, n);
    if (!across && on_device) return;  // gradients never leave the device
    Backend& backend = inner_.model().backend();
    std::vector<float> host(n);
    backend.download(host.data(), grads, n);
    if (t.local_size > 1 && !on_device) {
        comms_.island->allreduce_sum(host.data(), n);
        const float scale = 1.0f / t.local_size;
        for (float& g : host) g *= scale;
    }
    if (across) {
        std::vector<IslandNote> notes;
        SyncStats stats;
        sync_.weighted_mean(host.data(), n, {double(t.local_size), 0.0}, notes, stats);
        stats.wait_seconds = stats.seconds;  // training waits for every gradient
        traffic_.add(stats);
    }
    backend.upload(grads, host.data(), n);
}

StepResult DilocoLoop::inner_step() {
    StepResult r = inner_.step();
    for (Fragment& f : fragments_) {
        f.loss += r.loss;
        f.steps++;
    }
    return r;
}

bool DilocoLoop::round_end() const {
    return config_.mode == Mode::diloco && inner_.steps_taken() % config_.inner_steps == 0;
}

void DilocoLoop::prune_per_tensor(float* delta, size_t begin, size_t end) {
    for (const ParamTensor& tensor : inner_.model().layout().tensors) {
        const size_t lo = std::max(begin, tensor.offset),
                     hi = std::min(end, tensor.offset + tensor.size);
        if (lo < hi) prune_by_magnitude(delta + (lo - begin), hi - lo, config_.prune);
    }
}

// Snapshots the fragment (its parameters, or its outer gradient for lossy codecs and pruning)
// and runs its weighted mean, here or, with overlap, on a worker thread while training goes on.
void DilocoLoop::start_sync(int f) {
    const Topology& t = comms_.topology;
    Fragment& frag = fragments_[f];
    PendingSync& p = pending_.emplace_back();
    p.fragment = f;
    p.merge_after = inner_.steps_taken() + config_.overlap;
    p.sends_delta = config_.codec != Codec::fp32 || config_.prune > 0;
    p.report.fragment = f;
    p.report.outer_step = ++frag.syncs;
    p.report.present = islands_present(config_, t.islands, p.report.outer_step);

    const size_t begin = frag.range.begin, end = frag.range.end;
    std::vector<float> local = inner_.model().get_params();
    p.payload.assign(local.begin() + begin, local.begin() + end);
    if (p.sends_delta) {
        for (size_t i = begin; i < end; i++) p.payload[i - begin] = global_[i] - local[i];
        if (config_.prune > 0) prune_per_tensor(p.payload.data(), begin, end);
    }
    IslandNote mine{0.0, frag.loss / frag.steps};
    if (p.report.present[t.island]) {
        // Tokens this island trained on since the fragment's last sync: its ranks x steps (batch
        // and sequence are the same everywhere, so they cancel in the normalised weights).
        mine.weight = config_.weight_by_tokens ? double(t.local_size) * frag.steps : 1.0;
    }
    frag.loss = 0;
    frag.steps = 0;
    WireFormat wire{config_.codec};
    if (!residual_.empty()) {
        wire.residual = residual_.data() + begin;
        wire.owner_residual = owner_residual_.data() + begin;
    }
    auto run = [this, &p, mine, wire] {
        std::vector<IslandNote> notes;
        p.report.total_weight = sync_.weighted_mean(p.payload.data(), p.payload.size(), mine,
                                                    notes, p.report.sync, wire);
        for (const IslandNote& note : notes) p.report.island_loss.push_back(note.loss);
    };
    if (config_.overlap == 0) {
        run();
        p.report.sync.wait_seconds = p.report.sync.seconds;
    } else {
        p.done = std::async(std::launch::async, run);
    }
}

// The outer step on the fragment, then every rank's fragment becomes the new global one,
// mixed with what it trained meanwhile by --merge-alpha (absent islands restart from it too).
OuterReport DilocoLoop::merge(PendingSync& p) {
    if (p.done.valid()) {
        auto start = std::chrono::steady_clock::now();
        p.done.get();
        p.report.sync.wait_seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
    Fragment& frag = fragments_[p.fragment];
    const size_t begin = frag.range.begin, end = frag.range.end;
    if (p.report.total_weight > 0) {
        frag.range.step++;
        if (p.sends_delta)
            outer_.step_by_delta(global_.data() + begin, p.payload.data(), frag.range);
        else
            outer_.step_to_mean(global_.data() + begin, p.payload.data(), frag.range);
    }
    std::vector<float> local = inner_.model().get_params();
    const double alpha = config_.merge_alpha;
    for (size_t i = begin; i < end; i++)
        local[i] = static_cast<float>(alpha * local[i] + (1 - alpha) * global_[i]);
    inner_.model().set_params(local);
    traffic_.add(p.report.sync);
    return std::move(p.report);
}

std::vector<OuterReport> DilocoLoop::sync_due(bool drain) {
    std::vector<OuterReport> merged;
    if (config_.mode != Mode::diloco) return merged;
    const int step = inner_.steps_taken();
    for (int f = 0; f < config_.fragments; f++)
        if (step % config_.inner_steps == fragments_[f].offset)
            start_sync(f);
    while (!pending_.empty() && (drain || pending_.front().merge_after <= step)) {
        merged.push_back(merge(pending_.front()));
        pending_.pop_front();
    }
    return merged;
}

std::vector<float> DilocoLoop::global_params() {
    return config_.mode == Mode::diloco ? global_ : inner_.model().get_params();
}

double DilocoLoop::evaluate(Comm& comm, int max_batches) {
    std::vector<float> local;
    if (config_.mode == Mode::diloco) {  // fragments may hold local progress: set it aside
        local = inner_.model().get_params();
        inner_.model().set_params(global_);
    }
    auto [sum, rows] = inner_.evaluate_share(max_batches, comm.rank(), comm.size());
    if (!local.empty()) inner_.model().set_params(local);
    double totals[2] = {sum, static_cast<double>(rows)};
    comm.allreduce_sum(totals, 2);
    require(totals[1] > 0, "no validation windows");
    return totals[0] / totals[1];
}

std::string DilocoLoop::join_fragments(int (*field)(const Fragment&)) const {
    std::string list;
    for (const Fragment& f : fragments_) list += (list.empty() ? "" : ",") + std::to_string(field(f));
    return list;
}

void DilocoLoop::save(const std::string& dir) {
    const Topology& t = comms_.topology;
    require(pending_.empty(), "cannot save while an outer sync is in flight");
    // In local mode each island has its own model; elsewhere islands hold the global one here.
    const bool own_models = config_.mode == Mode::local && t.islands > 1;
    const std::string step = std::to_string(inner_.steps_taken());
    std::vector<double> positions(t.islands, 0.0);
    if (t.local_rank == 0) {
        positions[t.island] = static_cast<double>(inner_.data_position());
        comms_.leaders->allreduce_sum(positions.data(), t.islands);
    }
    if (t.world_rank == 0) {
        const std::vector<float>& global =
            config_.mode == Mode::diloco ? global_ : inner_.model().get_params();
        save_model(dir, inner_.model().config(), global, {{"diloco_step", step}});
        std::map<std::string, std::string> meta = {
            {"diloco_step", step},
            {"mode", mode_name(config_.mode)},
            {"islands", std::to_string(t.islands)},
            {"fragment_syncs", join_fragments([](const Fragment& f) { return f.syncs; })},
            {"fragment_outer_steps", join_fragments([](const Fragment& f) { return f.range.step; })},
            {"fragment_inner_steps", join_fragments([](const Fragment& f) { return f.steps; })}};
        for (const auto& [island, position] : known_positions_)
            meta["data_position." + std::to_string(island)] = std::to_string(position);
        for (int i = 0; i < t.islands; i++)
            meta["data_position." + std::to_string(i)] = std::to_string(uint64_t(positions[i]));
        const int64_t n = static_cast<int64_t>(global_.size());
        std::vector<TensorToWrite> tensors = {{"outer.m", {n}, outer_.moment1().data()}};
        if (!outer_.moment2().empty()) tensors.push_back({"outer.v", {n}, outer_.moment2().data()});
        write_safetensors(dir + kOuterFile, tensors, meta);
    }
    if (t.local_rank == 0) {
        const std::string idir = island_dir(dir, t.island);
        std::filesystem::create_directories(idir);
        if (own_models)
            save_model(idir, inner_.model().config(), inner_.model().get_params(),
                       {{"diloco_step", step}});
        inner_.save_state(idir + "/state.safetensors");
    }
    comms_.island->barrier();  // the island's directory exists
    const int64_t n = static_cast<int64_t>(residual_.size());
    if (n > 0)
        write_safetensors(residual_file(dir), {{"residual", {n}, residual_.data()},
                                               {"owner_residual", {n}, owner_residual_.data()}},
                          {});
    comms_.world->barrier();  // nobody reads or moves on before every file is in place
}

std::string DilocoLoop::residual_file(const std::string& dir) const {
    const Topology& t = comms_.topology;
    return island_dir(dir, t.island) + "/residual-" + std::to_string(t.local_rank) + ".safetensors";
}

void DilocoLoop::resume_fragments(const SafetensorsFile& outer) {
    const std::string keys[3] = {"fragment_syncs", "fragment_outer_steps", "fragment_inner_steps"};
    for (int k = 0; k < 3; k++) {
        std::stringstream in(outer.meta(keys[k]));
        size_t f = 0;
        for (std::string item; std::getline(in, item, ','); f++) {
            require(f < fragments_.size(), outer.path() + ": saved with more than " +
                                               std::to_string(fragments_.size()) + " fragments");
            const int value = parse_count(item, outer.path() + ": " + keys[k]);
            int& field = k == 0 ? fragments_[f].syncs
                                : (k == 1 ? fragments_[f].range.step : fragments_[f].steps);
            field = value;
        }
        require(f == fragments_.size(), outer.path() + ": saved with " + std::to_string(f) +
                                            " fragments, this run has " +
                                            std::to_string(fragments_.size()));
    }
}

void DilocoLoop::resume(const std::string& dir) {
    const Topology& t = comms_.topology;
    const int weights_step = inner_.load_weights(dir);  // first: is it this model at all?
    global_ = inner_.model().get_params();
    SafetensorsFile outer = SafetensorsFile::read(dir + kOuterFile);
    require(outer.meta("mode") == mode_name(config_.mode),
            outer.path() + ": saved in mode " + outer.meta("mode") + ", this run is " +
                mode_name(config_.mode));
    const int saved_islands = parse_count(outer.meta("islands"), outer.path() + ": islands");
    require(saved_islands >= 1, outer.path() + ": islands '0' is not a number of islands");
    const int step = parse_count(outer.meta("diloco_step"), outer.path() + ": diloco_step");
    const int64_t n = static_cast<int64_t>(global_.size());
    std::vector<float> m(n), v(outer_.moment2().size());
    outer.require_only(v.empty() ? std::vector<std::string>{"outer.m"}
                                 : std::vector<std::string>{"outer.m", "outer.v"});
    outer.read_f32("outer.m", {n}, m.data());
    if (!v.empty()) outer.read_f32("outer.v", {n}, v.data());
    outer_.set_state(m, v);
    resume_fragments(outer);
    for (const auto& [key, value] : outer.metadata()) {
        if (!key.starts_with("data_position.")) continue;
        uint64_t position = 0;
        require(parse_u64(value, position), outer.path() + ": bad " + key + " '" + value + "'");
        known_positions_[parse_count(key.substr(14), outer.path())] = position;
    }

    require(weights_step == step, dir + ": model and outer state come from different saves");
    const std::string idir = island_dir(dir, t.island);
    if (t.island < saved_islands && std::filesystem::exists(idir + "/state.safetensors")) {
        if (config_.mode == Mode::local && saved_islands > 1 && t.islands == saved_islands)
            inner_.load_weights(idir);
        inner_.load_state(idir + "/state.safetensors");
        require(inner_.steps_taken() == step,
                idir + ": island state comes from a different save than " + dir);
        // Each rank's slice of the codec's residual, when the islands are as they were.
        if (!residual_.empty() && t.islands == saved_islands &&
            std::filesystem::exists(residual_file(dir)))
        {
            SafetensorsFile file = SafetensorsFile::read(residual_file(dir));
            file.read_f32("residual", {int64_t(residual_.size())}, residual_.data());
            file.read_f32("owner_residual", {int64_t(residual_.size())}, owner_residual_.data());
        }
    } else {
        // A new island: global parameters, fresh moments, its own stream where it left off.
        inner_.set_step(step);
        auto known = known_positions_.find(t.island);
        inner_.set_data_position(known == known_positions_.end() ? 0 : known->second);
    }
}

}  // namespace diloco
