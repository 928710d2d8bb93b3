// The DiLoCo loop: inner steps with the gradients averaged inside an island (and across
// islands for ddp), the outer step every H inner steps with island presence from a schedule and
// seeded drop-out, Streaming DiLoCo's fragments. Checkpoints: checkpoint/diloco_state.cpp.
#include "optim/diloco.h"

#include <algorithm>
#include <chrono>

#include "util/error.h"
#include "util/parallel.h"
#include "util/stop_signal.h"
#include "util/timer.h"

namespace diloco {

const char* mode_name(Mode mode) {
    switch (mode) {
        case Mode::local: return "local";
        case Mode::ddp: return "ddp";
        case Mode::diloco: return "diloco";
    }
    return "?";
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
    IslandSchedule(c.island_schedule, 0, c.drop_prob, 0);  // the syntax, before any work
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
    : comms_(comms), inner_(inner), config_(config), syncs_(config.mode == Mode::diloco),
      own_models_(config.mode == Mode::local && comms.topology.islands > 1),
      schedule_(config.island_schedule, comms.topology.islands, config.drop_prob,
                inner.config().seed),
      grad_average_(comms, config.mode == Mode::ddp),
      outer_(config.outer, inner.model().num_params()), global_(inner.model().get_params()) {
    validate(config, inner.model().config().layers);
    require(config.overlap == 0 || comms.world->threads_concurrent(),
            "--overlap needs an MPI library with MPI_THREAD_MULTIPLE");
    if (syncs_) sync_ = std::make_unique<OuterSync>(comms);
    if (config.error_feedback) {
        residual_.assign(global_.size(), 0.0f);
        owner_residual_.assign(global_.size(), 0.0f);
    }
    const auto ranges = fragment_ranges(inner.model().layout(), config.fragments);
    for (int f = 0; f < config.fragments; f++) {
        Fragment frag;
        frag.begin = ranges[f].first;
        frag.end = ranges[f].second;
        frag.offset = f * config.inner_steps / config.fragments;
        fragments_.push_back(frag);
        if (syncs_) payloads_.emplace_back(frag.end - frag.begin);
    }
    if (syncs_) pin_outer_buffers();
    if (grad_average_.needed())
        inner_.set_grad_reducer([this](void* grads, size_t n) { average_gradients(grads, n); });
}

// With fp32 on the wire the mean is exact, so an owner's outer step on its share can stand for
// every rank's; lossy codecs send the mean's encoding, which each rank steps by itself. An
// overlapped sync would step on the worker thread: there every rank steps after the merge.
bool DilocoLoop::shards_outer_step() const {
    return syncs_ && config_.codec == Codec::fp32 && config_.prune == 0 && config_.overlap == 0;
}

// Collective: the outer state that owners stepped on their shares, whole again on every rank.
void DilocoLoop::gather_outer_state() {
    if (!shards_outer_step()) return;
    for (const Fragment& f : fragments_)
        for (std::vector<float>* state : outer_.state())
            sync_->gather_shares(state->data() + f.begin, f.end - f.begin);
}

// The global parameters and the payloads cross to and from the device at every outer step.
void DilocoLoop::pin_outer_buffers() {
    Backend& backend = inner_.model().backend();
    pins_.emplace_back(backend, global_.data(), global_.size() * sizeof(float));
    for (std::vector<float>& payload : payloads_)
        pins_.emplace_back(backend, payload.data(), payload.size() * sizeof(float));
}

DilocoLoop::~DilocoLoop() {
    for (PendingSync& p : pending_)
        if (p.done.valid()) p.done.wait();  // the worker writes into p
}

void DilocoLoop::average_gradients(void* grads, size_t n) {
    const bool on_device = comms_.topology.local_size > 1 && island_average_;
    if (on_device) island_average_(grads, n);
    if (!grad_average_.needs_host(on_device)) return;  // gradients never leave the device
    Backend& backend = inner_.model().backend();
    std::vector<float> host(n);
    backend.download(host.data(), grads, n);
    grad_average_.average(host.data(), n, on_device, traffic_);
    backend.upload(grads, host.data(), n);
}

// Algorithm 1 of DiLoCo (Douillard et al. 2023), with Streaming DiLoCo's fragments as its
// F > 1 case. Every island i trains its parameters theta_i; every rank keeps the global ones,
// theta_g. Fragment p (all of the model when F = 1) syncs after the inner steps t with
// t mod H = offset_p (0 for F = 1: every H steps):
//
//   theta_i <- theta_g                           at the start, and after each outer step
//   H times: theta_i <- InnerOpt(theta_i, grad L(x ~ D_i))          (AdamW, data parallel)
//   delta_i = theta_g - theta_i                  the island's outer gradient
//   Delta = sum_i w_i delta_i / sum_i w_i        its mean across the islands present
//   theta_g <- OuterOpt(theta_g, Delta)          Nesterov, SGD or Adam
//
// With --overlap TAU the mean runs on a worker thread while the island trains TAU more steps,
// and the restart keeps some of that: theta_i <- alpha theta_i + (1 - alpha) theta_g. In local
// and ddp modes nothing syncs (ddp averages every step's gradients across islands instead).
void DilocoLoop::train(int last_step, LoopObserver& observer) {
    if (resumed_) allow_catch_up();
    // Progress kept at a sync that never completed: that sync comes first.
    const int step = inner_.steps_taken();
    if (keeps_progress() && step > last_outer_step_ && step % config_.inner_steps == 0)
        close_step(step, last_step, observer);
    while (inner_.steps_taken() < last_step) {
        if (stop_agreed())
            throw Interrupted(std::string("stopped by ") + stop_signal_name() + " after step " +
                              std::to_string(inner_.steps_taken()));
        const StepResult r = inner_step();
        observer.inner_step(r);
        close_step(r.step, last_step, observer);
    }
}

// Islands that kept their progress are ahead of those that restart from the checkpoint, and
// wait for them at the first outer sync: its deadline grows by twice the time the islands
// behind need to catch up, at the slowest step time a kept round measured.
void DilocoLoop::allow_catch_up() {
    const Topology& t = comms_.topology;
    const Fragment& round = fragments_[0];
    std::vector<double> steps(2 * size_t(t.world_size), 0.0);
    steps[t.world_rank] = inner_.steps_taken();
    if (round.count.inner_steps > 0)
        steps[t.world_size + t.world_rank] = round.seconds / round.count.inner_steps;
    comms_.world->allreduce_sum(steps.data(), steps.size());
    const auto [behind, ahead] = std::minmax_element(steps.begin(), steps.begin() + t.world_size);
    const double step_s = *std::max_element(steps.begin() + t.world_size, steps.end());
    if (*ahead > *behind) extend_deadlines(2 * (*ahead - *behind) * step_s);
}

// Every communicator with a deadline: those that cross islands.
void DilocoLoop::extend_deadlines(double seconds) {
    catch_up_s_ = seconds;
    for (Comm* c : {comms_.world, comms_.cross.get(), comms_.leaders.get()})
        c->extend_deadline(seconds);
}

// Every rank of an island stops at the same step, or one would wait forever for the others
// in the next step's gradient average.
bool DilocoLoop::stop_agreed() {
    double stop = stop_signal() ? 1 : 0;
    if (comms_.island->size() > 1) comms_.island->allreduce_sum(&stop, 1);
    return stop > 0;
}

// The syncs due after inner step `step`, the outer steps of those ready to merge, and the
// observer's word that the step is done.
void DilocoLoop::close_step(int step, int last_step, LoopObserver& observer) {
    for (int p = 0; p < config_.fragments; p++)
        if (due(fragments_[p], step)) start_mean(p);
    while (!pending_.empty() && (pending_.front().merge_after <= step || step == last_step)) {
        OuterReport report = outer_step(pending_.front());
        pending_.pop_front();  // before the observer, which may save: no sync is in flight
        report.step = step;
        observer.outer_step(report);
    }
    observer.step_done(step, syncs_ && step % config_.inner_steps == 0);
}

StepResult DilocoLoop::inner_step() {
    StepResult r = inner_.step();
    for (Fragment& f : fragments_) {
        f.loss += r.loss;
        f.seconds += r.ms / 1000;
        f.count.inner_steps++;
    }
    return r;
}

bool DilocoLoop::due(const Fragment& fragment, int step) const {
    return syncs_ && step % config_.inner_steps == fragment.offset;
}

void DilocoLoop::prune_per_tensor(float* delta, size_t begin, size_t end) {
    for (const ParamTensor& tensor : inner_.model().layout().tensors) {
        const size_t lo = std::max(begin, tensor.offset),
                     hi = std::min(end, tensor.offset + tensor.size);
        if (lo < hi) prune_by_magnitude(delta + (lo - begin), hi - lo, config_.prune);
    }
}

// delta_i = theta_g - theta_i on fragment f, and its weighted mean across islands, here or,
// with overlap, on a worker thread while training goes on. With fp32 on the wire (and no
// pruning) the islands send theta_i instead, the same information: the outer step forms
// Delta = theta_g - mean_i theta_i in double, so lr 1 and momentum 0 give the mean exactly.
void DilocoLoop::start_mean(int f) {
    const Topology& t = comms_.topology;
    Fragment& frag = fragments_[f];
    PendingSync& p = pending_.emplace_back();
    p.fragment = f;
    p.merge_after = inner_.steps_taken() + config_.overlap;
    p.sends_delta = config_.codec != Codec::fp32 || config_.prune > 0;
    p.report.fragment = f;
    p.report.values = frag.end - frag.begin;
    p.report.outer_step = ++frag.count.syncs;
    p.report.present = schedule_.present(p.report.outer_step);

    const size_t begin = frag.begin, end = frag.end;
    p.payload = payloads_[f].data();
    float* payload = p.payload;
    // The island's ranks hold the same parameters: each reads only the part it sends (pruning
    // ranks values within whole tensors, so it reads all).
    const std::pair<size_t, size_t> own = config_.prune > 0
                                              ? std::pair<size_t, size_t>{0, end - begin}
                                              : sync_->own_range(end - begin);
    const size_t lo = own.first, hi = own.second;
    timed(p.report.sync.split.download, [&] {
        inner_.model().read_params(payload + lo, begin + lo, begin + hi);
        if (!p.sends_delta) return;
        const float* global = global_.data() + begin;
#pragma omp parallel for schedule(static) if (hi - lo >= kParallelMin)
        for (size_t i = lo; i < hi; i++) payload[i] = global[i] - payload[i];
        if (config_.prune > 0) prune_per_tensor(payload, begin, end);
    });
    p.round = frag;
    IslandNote mine{0.0, frag.loss / frag.count.inner_steps};
    if (p.report.present[t.island]) {
        // Tokens this island trained on since the fragment's last sync: ranks x rows x
        // micro-batches x sequence x steps (islands may have batches of their own).
        const InnerConfig& c = inner_.config();
        const double step_tokens = double(t.local_size) * c.batch * c.grad_accum * c.seq;
        mine.weight = config_.weight_by_tokens ? step_tokens * frag.count.inner_steps : 1.0;
    }
    frag.loss = 0;
    frag.seconds = 0;
    frag.count.inner_steps = 0;
    WireFormat wire{config_.codec};
    if (!residual_.empty()) {
        wire.residual = residual_.data() + begin;
        wire.owner_residual = owner_residual_.data() + begin;
    }
    OwnerStep owner_step;
    float* out = p.payload;
    if (shards_outer_step()) {
        // Each rank steps its share of the mean and the new global parameters go out exactly:
        // the outer state is then current on its owner alone (gathered before a checkpoint).
        out = global_.data() + begin;
        const int step = frag.count.outer_steps + 1;
        owner_step = [this, begin, step](float* mean, size_t at, size_t len) {
            outer_.step_share(global_.data() + begin + at, mean,
                              {begin + at, begin + at + len, step});
        };
    }
    auto run = [this, &p, mine, wire, owner_step, out] {
        std::vector<IslandNote> notes;
        p.report.total_weight =
            sync_->weighted_mean(p.payload, p.round.end - p.round.begin, mine, notes,
                                 p.report.sync, wire, owner_step, out);
        for (const IslandNote& note : notes) p.report.island_loss.push_back(note.loss);
    };
    if (config_.overlap == 0) {
        run();
        p.report.sync.wait_seconds = p.report.sync.seconds;
    } else {
        p.done = std::async(std::launch::async, run);
    }
}

// theta_g <- OuterOpt(theta_g, Delta) on the fragment (unless no island was present), then
// every rank restarts from it: theta_i <- theta_g, or with --merge-alpha a mix with what the
// island trained while the mean was under way. Absent islands restart from it too.
OuterReport DilocoLoop::outer_step(PendingSync& p) {
    if (p.done.valid()) {
        p.report.sync.wait_seconds = 0;
        timed(p.report.sync.wait_seconds, [&] { p.done.get(); });
    }
    Fragment& frag = fragments_[p.fragment];
    const size_t begin = frag.begin, end = frag.end, n = end - begin;
    OuterSplit& split = p.report.sync.split;
    if (p.report.total_weight > 0) {
        const OuterRange range{begin, end, ++frag.count.outer_steps};
        if (!shards_outer_step())  // else each owner stepped its share inside the sync
            timed(split.optimizer, [&] {
                if (p.sends_delta)
                    outer_.step_by_delta(global_.data() + begin, p.payload, range);
                else
                    outer_.step_to_mean(global_.data() + begin, p.payload, range);
            });
    }
    const double alpha = config_.merge_alpha;
    Gpt& model = inner_.model();
    if (alpha == 0) {
        timed(split.upload, [&] { model.write_params(global_.data() + begin, begin, end); });
    } else {
        float* local = p.payload;  // the mean is spent: the buffer takes the island's progress
        timed(split.download, [&] { model.read_params(local, begin, end); });
        timed(split.upload, [&] {
            const float* global = global_.data() + begin;
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
            for (size_t i = 0; i < n; i++)
                local[i] = static_cast<float>(alpha * local[i] + (1 - alpha) * global[i]);
            model.write_params(local, begin, end);
        });
    }
    traffic_.add(p.report.sync);
    last_outer_step_ = inner_.steps_taken();
    if (catch_up_s_ > 0) extend_deadlines(0);  // the islands behind have caught up
    return std::move(p.report);
}

void DilocoLoop::read_global_params(const std::function<void(const float*, size_t)>& f) {
    if (syncs_) return f(global_.data(), global_.size());
    const std::vector<float> params = inner_.model().get_params();
    f(params.data(), params.size());
}

std::vector<float> DilocoLoop::global_params() {
    return syncs_ ? global_ : inner_.model().get_params();
}

double DilocoLoop::evaluate(int max_batches) {
    Comm& comm = own_models_ ? *comms_.island : *comms_.world;
    std::vector<float> local;
    if (syncs_) {  // fragments may hold local progress: set it aside
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

}  // namespace diloco
