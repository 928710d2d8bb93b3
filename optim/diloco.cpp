// The DiLoCo loop: gradient averaging inside an island (and across islands for ddp), the outer
// step every H inner steps with island presence from a schedule and seeded drop-out, and
// checkpoints that survive a change in the number of islands.
#include "optim/diloco.h"

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
        for (std::string id; std::getline(ids, id, '+');)
            e.islands.push_back(parse_count(id, what));
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

DilocoLoop::DilocoLoop(InnerTrainer& inner, IslandComms& comms, const DilocoConfig& config)
    : comms_(comms), inner_(inner), config_(config), sync_(comms),
      outer_(config.outer, inner.model().num_params()),
      global_(inner.model().get_params()) {
    require(config.inner_steps > 0, "--inner-steps must be positive (H = " +
                                        std::to_string(config.inner_steps) + ")");
    require(config.drop_prob >= 0 && config.drop_prob < 1, "--drop-prob must be in [0, 1)");
    parse_schedule(config.island_schedule);  // fail early, on every rank alike
    const Topology& t = comms.topology;
    if (t.local_size > 1 || (config.mode == Mode::ddp && t.islands > 1))
        inner_.set_grad_reducer([this](void* grads, size_t n) { reduce_gradients(grads, n); });
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
        sync_.weighted_mean(host.data(), n, {double(t.local_size), 0.0}, notes, traffic_);
    }
    backend.upload(grads, host.data(), n);
}

StepResult DilocoLoop::inner_step() {
    StepResult r = inner_.step();
    round_loss_ += r.loss;
    round_steps_++;
    return r;
}

bool DilocoLoop::outer_due() const {
    return config_.mode == Mode::diloco && round_steps_ > 0 &&
           inner_.steps_taken() % config_.inner_steps == 0;
}

OuterReport DilocoLoop::outer_step() {
    const Topology& t = comms_.topology;
    OuterReport rep;
    rep.outer_step = ++outer_steps_;
    rep.present = islands_present(config_, t.islands, rep.outer_step);

    IslandNote mine{0.0, round_loss_ / round_steps_};
    if (rep.present[t.island]) {
        // Tokens this island trained on in the round: its ranks x steps (batch and sequence
        // are the same everywhere, so they cancel in the normalised weights).
        mine.weight = config_.weight_by_tokens ? double(t.local_size) * round_steps_ : 1.0;
    }
    std::vector<float> mean = inner_.model().get_params();
    std::vector<IslandNote> notes;
    rep.total_weight = sync_.weighted_mean(mean.data(), mean.size(), mine, notes, rep.sync);
    for (const IslandNote& note : notes) rep.island_loss.push_back(note.loss);
    if (rep.total_weight > 0) outer_.step(global_, mean);
    inner_.model().set_params(global_);  // absent islands restart from the new global too
    round_loss_ = 0;
    round_steps_ = 0;
    traffic_.bytes_sent += rep.sync.bytes_sent;
    traffic_.bytes_received += rep.sync.bytes_received;
    traffic_.seconds += rep.sync.seconds;
    traffic_.wait_seconds += rep.sync.wait_seconds;
    return rep;
}

double DilocoLoop::evaluate(Comm& comm, int max_batches) {
    auto [sum, rows] = inner_.evaluate_share(max_batches, comm.rank(), comm.size());
    double totals[2] = {sum, static_cast<double>(rows)};
    comm.allreduce_sum(totals, 2);
    require(totals[1] > 0, "no validation windows");
    return totals[0] / totals[1];
}

void DilocoLoop::save(const std::string& dir) {
    const Topology& t = comms_.topology;
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
            {"outer_steps", std::to_string(outer_steps_)},
            {"outer_opt_steps", std::to_string(outer_.steps_taken())}};
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
    comms_.world->barrier();  // nobody reads or moves on before every file is in place
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
    const int step = parse_count(outer.meta("diloco_step"), outer.path() + ": diloco_step");
    const int64_t n = static_cast<int64_t>(global_.size());
    std::vector<float> m(n), v(outer_.moment2().size());
    outer.read_f32("outer.m", {n}, m.data());
    if (!v.empty()) outer.read_f32("outer.v", {n}, v.data());
    outer_.set_state(m, v, parse_count(outer.meta("outer_opt_steps"), outer.path()));
    outer_steps_ = parse_count(outer.meta("outer_steps"), outer.path() + ": outer_steps");
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
    } else {
        // A new island: global parameters, fresh moments, its own stream where it left off.
        inner_.set_step(step);
        auto known = known_positions_.find(t.island);
        inner_.set_data_position(known == known_positions_.end() ? 0 : known->second);
    }
}

}  // namespace diloco
