// The DiLoCo loop, where islands meet optimizers: inner steps data parallel inside an island,
// and every H steps the islands' weighted mean and an outer step on the global parameters,
// whole or (Streaming DiLoCo) one fragment of layers at a time, blocking or overlapped.
// The baselines share it: `local` (islands never talk) and `ddp` (every rank, every step).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "comm/grad_average.h"
#include "comm/outer_sync.h"
#include "comm/topology.h"
#include "optim/inner.h"
#include "optim/island_schedule.h"
#include "optim/outer.h"

namespace diloco {

enum class Mode { local, ddp, diloco };
inline constexpr Mode kModes[] = {Mode::local, Mode::ddp, Mode::diloco};
const char* mode_name(Mode mode);

struct DilocoConfig {
    Mode mode = Mode::diloco;
    int inner_steps = 100;          // H
    OuterOptConfig outer;
    bool weight_by_tokens = false;  // weigh each island's parameters by the tokens it trained on
    double drop_prob = 0;           // each island misses each outer sync with this probability
    std::string island_schedule;    // "FROM-TO:I+J+...,..." outer steps (1-based) -> islands
                                    // (drop-out is seeded by the inner trainer's seed)
    Codec codec = Codec::fp32;      // of the outer gradient on the wire
    bool error_feedback = false;    // add what the codec lost to the next outer gradient
    double prune = 0;               // fraction of each tensor's outer gradient zeroed
    int fragments = 1;              // F: groups of layers syncing at staggered steps
    int overlap = 0;                // TAU: inner steps a fragment's sync runs behind training
    float merge_alpha = 0;          // local weight when a late global fragment is merged
};

// Counters of one Streaming DiLoCo fragment (the whole model when F = 1).
struct FragmentCounters {
    int syncs = 0;        // syncs started
    int outer_steps = 0;  // outer optimizer steps taken (Adam's bias correction)
    int inner_steps = 0;  // inner steps since its last sync
};

// Checks the streaming and codec options against H and the model's layers.
void validate(const DilocoConfig& config, int layers);

// The F fragments of Streaming DiLoCo as ranges of the flat buffer: contiguous groups of
// layers, the embeddings with the first and the final LayerNorm with the last, so that every
// parameter lies in exactly one fragment.
std::vector<std::pair<size_t, size_t>> fragment_ranges(const ParamLayout& layout, int fragments);

struct OuterReport {
    int step = 0;                     // the inner step after which it was merged
    int fragment = 0;
    int outer_step = 0;               // this fragment's sync count, 1-based
    size_t values = 0;                // parameters in the fragment
    std::vector<double> island_loss;  // mean training loss of each island since its last sync
    std::vector<bool> present;
    double total_weight = 0;
    SyncStats sync;                   // this rank's traffic in this sync
};

// What the loop tells the program that runs it (printing, metrics, evaluation, checkpoints),
// on every rank in the same order, so that the observer may run collectives.
class LoopObserver {
public:
    virtual ~LoopObserver() = default;
    virtual void inner_step(const StepResult& step) = 0;
    // An outer step of one fragment (all of the model when F = 1) has been taken.
    virtual void outer_step(const OuterReport& report) = 0;
    // The step and its outer steps are done. round_end: diloco's round of H inner steps has
    // closed (every fragment has synced once since the last round); no sync is in flight then.
    virtual void step_done(int step, bool round_end) = 0;
};

class DilocoLoop {
public:
    // The inner trainer must hold this rank's starting parameters; they become the global ones.
    DilocoLoop(InnerTrainer& inner, IslandComms& comms, const DilocoConfig& config);
    ~DilocoLoop();
    // Averages the gradients over the island's ranks where they lie (NCCL on GPUs), in place of
    // the host copy and the island's MPI communicator.
    void set_island_average(GradReducer average) { island_average_ = std::move(average); }

    // Trains up to inner step `last_step` (Algorithm 1; see diloco.cpp); the last step merges
    // every sync still in flight. A stop signal (util/stop_signal.h), agreed on by the island's
    // ranks at a step boundary, ends it with Interrupted (util/error.h).
    void train(int last_step, LoopObserver& observer);
    int fragments() const { return config_.fragments; }

    // Validation loss of the global model (diloco and ddp, the batches split over the world's
    // ranks) or of each island's own model (local, split over the island's ranks).
    double evaluate(int max_batches);
    // The global parameters: identical on every rank of the world after each outer step.
    std::vector<float> global_params();
    // f(values, n) over the global parameters where they lie, without a copy of them in diloco.
    void read_global_params(const std::function<void(const float* values, size_t n)>& f);

    // Traffic of this rank across islands so far (ddp: every step; diloco: outer steps), and
    // the time training stood still waiting for it.
    const SyncStats& traffic() const { return traffic_; }

    // Collective: a checkpoint (its files: checkpoint/diloco_state.h, where these are defined)
    // at an outer-step boundary, with no sync in flight.
    void save(const std::string& dir);
    // Collective: the same checkpoint as copies taken now, and a function that writes this
    // rank's files of it into a directory later, on any thread, with no collective.
    std::function<void(const std::string& dir)> snapshot();
    // Restores a checkpoint saved with any number of islands: islands that existed keep their
    // state, new ones start from the global parameters with fresh moments and data. An island
    // with progress kept past the checkpoint (checkpoint/writer.h) goes on from it.
    void resume(const std::string& dir);

    // Whether an island's progress past its last outer step can be kept: in diloco with one
    // fragment and no overlap, its parameters and AdamW state are all that a round holds.
    bool keeps_progress() const;
    // The inner step of the last outer step (or of the checkpoint resumed).
    int last_outer_step() const { return last_outer_step_; }
    // On an island's leader, after train() stopped: whether it trained past the last outer
    // step, and the writer of that progress into a directory (parameters, AdamW state, data
    // position, and the round's loss and time so far).
    bool has_progress() const;
    void write_progress(const std::string& dir);

private:
    struct Fragment {
        size_t begin = 0, end = 0;  // its range of the flat buffer
        int offset = 0;             // its syncs follow inner steps t with t % H == offset
        FragmentCounters count;
        double loss = 0;            // summed training loss of its inner steps since its sync
        double seconds = 0;         // and their summed time
    };
    struct PendingSync {
        int fragment = 0;
        int merge_after = 0;         // inner step after which the result is merged
        bool sends_delta = false;    // payload: outer gradient, else parameters
        float* payload = nullptr;    // the fragment's buffer; becomes the islands' mean
        OuterReport report;
        Fragment round;              // the fragment as it was before the sync started
        std::future<void> done;
    };
    void pin_outer_buffers();
    bool shards_outer_step() const;
    void gather_outer_state();
    void average_gradients(void* grads, size_t n);
    StepResult inner_step();
    bool stop_agreed();
    void close_step(int step, int last_step, LoopObserver& observer);
    void load_progress(const std::string& dir, int base);
    void allow_catch_up();
    void extend_deadlines(double seconds);
    bool due(const Fragment& fragment, int step) const;
    void start_mean(int f);
    OuterReport outer_step(PendingSync& sync);
    void prune_per_tensor(float* delta, size_t begin, size_t end);
    IslandComms& comms_;
    InnerTrainer& inner_;
    DilocoConfig config_;
    const bool syncs_;       // diloco: outer steps; local and ddp: never
    const bool own_models_;  // local with several islands: each island keeps its own model
    IslandSchedule schedule_;
    GradAverage grad_average_;
    std::unique_ptr<OuterSync> sync_;  // diloco mode
    OuterOptimizer outer_;
    GradReducer island_average_;
    std::vector<float> global_;
    // Error feedback: what the codec has not yet delivered, of this island's outer gradients
    // and of the means this rank encodes as a sub-slice owner.
    std::vector<float> residual_, owner_residual_;
    std::vector<Fragment> fragments_;
    // One buffer per fragment for its sync (one sync of a fragment is in flight at a time),
    // kept from round to round: a fresh one would cost its page faults at every outer step.
    std::vector<std::vector<float>> payloads_;
    std::deque<PendingSync> pending_;
    SyncStats traffic_;
    std::map<int, uint64_t> known_positions_;  // data positions of every island ever saved
    int last_outer_step_ = 0;
    bool resumed_ = false;
    double catch_up_s_ = 0;  // added to the deadline of the first outer sync after a resume
    // Last, so that they let go of global_ and payloads_ before those are freed.
    std::vector<HostPin> pins_;
};

}  // namespace diloco
