// `diloco train`: binds the run's options (flags or a TOML --config) into the library's
// configurations, checks them, wires topology, data, model, inner trainer and DiLoCo loop, and
// hands the loop its hooks: lines, metrics, evaluations and checkpoints. Under mpirun every rank
// runs this; rank 0 alone prints and logs.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>

#include "checkpoint/writer.h"
#include "comm/plan.h"
#include "comm/ranks.h"
#include "model/layout.h"
#include "tools/commands.h"
#include "tools/config_file.h"
#include "tools/data_source.h"
#include "tools/options.h"
#include "tools/train_hooks.h"
#include "util/error.h"
#include "util/format.h"
#include "util/stop_signal.h"

namespace diloco {

namespace {

// Ranges of the options: bounds far past any real run, that keep products of them in 64 bits.
constexpr int kMaxSteps = 1'000'000'000;
constexpr Range<int> kBatchRange{.min = 1, .max = 1 << 16};
constexpr Range<float> kFractionBelowOne{.min = 0, .max = 1, .max_open = true};
constexpr double kWeekSeconds = 7 * 24 * 3600;

// Each option's own range is checked as it is read (add_number); these are its combinations.
void check_options(const TrainOptions& o) {
    require(o.batch_tokens == 0 || o.inner.grad_accum == 1,
            "--grad-accum and --batch-tokens exclude each other: give one");
    require(o.stop_at <= o.steps(), "--stop-at " + std::to_string(o.stop_at) +
                                        " is past --steps " + std::to_string(o.steps()));
    const int h = o.diloco.inner_steps;
    validate(o.diloco.outer);
    validate(o.wan);
    if (o.mode() != Mode::diloco) return;
    // Checkpoints and the end of a run fall on outer-step boundaries.
    auto boundary = [&](int step, const char* what) {
        require(step % h == 0, std::string(what) + " " + std::to_string(step) +
                                   " is not a multiple of --inner-steps " + std::to_string(h));
    };
    boundary(o.steps(), "--steps");
    boundary(o.stop_at, "--stop-at");
    boundary(o.save_every, "--save-every");
    require(o.diloco.overlap == 0 || (o.save_every == 0 && o.stop_at == 0),
            "--save-every and --stop-at need every sync merged: not with --overlap > 0");
}

// ddp keeps one model on every rank, which a GPU and a CPU would round apart step by step.
void check_island_devices(const TrainOptions& o) {
    const std::vector<std::string>& devices = o.device.island_devices;
    const bool mixed = std::ranges::adjacent_find(devices, std::not_equal_to{}) != devices.end();
    require(o.mode() != Mode::ddp || !mixed,
            "--island-devices: ddp keeps one model on every rank, which a GPU and a CPU round "
            "apart; mix devices in diloco or local mode");
}

// --island-batch: one entry per island, and only where islands keep their own batches.
void check_island_batch(const TrainOptions& o, const Topology& t) {
    const std::vector<int>& rows = o.island_batch;
    if (rows.empty()) return;
    std::string list;
    for (int r : rows) list += (list.empty() ? "" : ",") + std::to_string(r);
    const std::string what = "--island-batch " + list;
    require(int(rows.size()) == t.islands,
            what + ": " + std::to_string(rows.size()) + " batch" + (rows.size() == 1 ? "" : "es") +
                " for " + std::to_string(t.islands) + " island" + (t.islands == 1 ? "" : "s") +
                " (one per island, in island order)");
    // ddp takes every rank's rows from one batch and averages their gradients equally.
    require(o.mode() != Mode::ddp, what + ": ddp shares one batch across all ranks; give --batch");
    require(o.batch_tokens == 0,
            what + " and --batch-tokens exclude each other: --batch-tokens gives every island "
                   "the same tokens per step");
}

// A simulated link on which one sync outlasts --sync-timeout would keep the run silent for that
// long: refused with the time it would take (the cost model of `diloco plan`).
void check_link_wait(const TrainOptions& o, const Topology& t, uint64_t params) {
    if (!o.wan.active() || o.sync_timeout == 0 || t.islands < 2 || o.mode() == Mode::local)
        return;
    PlanInput in;
    in.params = params;
    in.islands = t.islands;
    in.inner_steps = o.diloco.inner_steps;
    in.fragments = o.diloco.fragments;
    in.codec = o.diloco.codec;
    in.link = o.wan;
    const Method method = o.mode() == Mode::ddp       ? Method::ddp
                          : o.diloco.fragments > 1 ? Method::streaming
                                                   : Method::diloco;
    const double seconds = sync_seconds(in, method);
    char text[256];
    std::snprintf(text, sizeof text,
                  "--wan-gbps %g, --wan-latency-ms %g: one %s sync of %s parameters would take "
                  "%.3g s on the simulated link, more than --sync-timeout %g s: raise "
                  "--wan-gbps, or --sync-timeout (0: no limit) to wait that long",
                  o.wan.gbps, o.wan.latency_ms, method_name(method), thousands(params).c_str(),
                  seconds, o.sync_timeout);
    require(seconds <= o.sync_timeout, text);
}

// Micro-batches per step: --grad-accum, or what --batch-tokens asks of this rank's island
// (ddp: of every island, the world's step spread evenly over all ranks).
int grad_accum(const TrainOptions& o, const Topology& t) {
    if (o.batch_tokens == 0) return o.inner.grad_accum;
    const bool ddp = o.mode() == Mode::ddp;
    const uint64_t tokens = o.batch_tokens * (ddp ? t.islands : 1);
    const int ranks = ddp ? t.world_size : t.local_size;
    const uint64_t micro = uint64_t(o.inner.batch) * o.inner.seq;
    require(tokens % (micro * ranks) == 0 && tokens / (micro * ranks) <= INT32_MAX,
            "--batch-tokens " + std::to_string(o.batch_tokens) +
                (ddp ? " x " + std::to_string(t.islands) + " islands" : std::string()) +
                " is not a whole number of micro-batches of --batch x --seq = " +
                std::to_string(micro) + " tokens on each of " + std::to_string(ranks) +
                (ddp ? " ranks" : " island ranks"));
    return static_cast<int>(tokens / (micro * ranks));
}

// The options' inner configuration, with what depends on this rank's place: its micro-batches,
// its batch stream and its rows of each batch.
InnerConfig inner_config(const TrainOptions& o, const Topology& t) {
    InnerConfig c = o.inner;
    // Validation windows come in batches of --batch rows on every rank, whatever its island's.
    c.val_batch = o.inner.batch;
    if (!o.island_batch.empty()) c.batch = o.island_batch[t.island];
    c.grad_accum = grad_accum(o, t);
    if (o.mode() == Mode::ddp) {
        // One batch of world x B x grad_accum rows per step, each rank taking its rows.
        c.data_seed = c.seed;
        c.first_row = t.world_rank * c.batch * c.grad_accum;
    } else {
        // One stream per island (island 0's is the single-worker stream), rows per rank.
        c.data_seed = c.seed + 1000003ull * t.island_id();
        c.first_row = t.local_rank * c.batch * c.grad_accum;
    }
    // The batch stream is already one per set of ranks that share parameters: round alike there.
    c.adamw.rounding_seed = c.data_seed;
    return c;
}

// Islands read their own streams, except in ddp mode, where every rank takes rows of one stream.
std::unique_ptr<TrainData> load_data(const TrainOptions& o, const Topology& t) {
    const bool one_stream = o.mode() == Mode::ddp;
    return open_data(o.data, {one_stream ? 0 : t.island_id(), one_stream ? 1 : t.id_count(),
                              o.inner.seq, o.val_fraction});
}

void setup(Run& run, TrainOptions& o, Comm& world) {
    run.comms = connect_islands(world, o.islands, o.island_sizes);  // collective
    run.comms.topology.island_ids = parse_island_ids(o.island_ids, run.comms.topology.islands);
    const Topology& t = run.comms.topology;
    if (!o.mode_given) o.diloco.mode = t.islands > 1 ? Mode::diloco : Mode::local;
    check_options(o);
    check_island_devices(o);
    check_island_batch(o, t);
    const DeviceOptions device = island_device_options(o.device, t.island, t.islands);
    // Between islands a peer can die or be cut off: no call there waits forever.
    for (Comm* c : {&world, run.comms.cross.get(), run.comms.leaders.get()})
        c->set_deadline(o.sync_timeout, t.island_of_rank);
    if (o.wan.active()) {  // every message between islands crosses the simulated link
        run.comms.cross = std::make_unique<WanComm>(std::move(run.comms.cross), o.wan);
        run.comms.leaders = std::make_unique<WanComm>(std::move(run.comms.leaders), o.wan);
    }
    // The last collective of setup: what comes after may fail on one rank alone.
    const NodePlace gpu = gpu_place(world, uses_gpu(device));
    const InnerConfig inner = inner_config(o, t);
    run.device = make_device(device, gpu);  // before anything is written
    run.data = load_data(o, t);
    GptConfig model = preset_config(o.preset, run.data->vocab());
    model.eot = run.data->eot();
    check_link_wait(o, t, build_layout(model).total);
    if (!o.save.empty() && t.world_rank == 0) check_checkpoint_root(o.save);
    if (t.world_rank == 0)  // before the model: the probe's buffers come and go
        run.peak = peak_rate(*run.device.backend, run.device.gpu >= 0, o.peak_tflops);
    run.trainer = std::make_unique<InnerTrainer>(*run.device.backend, model, *run.data, inner);
    run.trainer->init_params();
    require(o.init.empty() || o.resume.empty(), "--init and --resume exclude each other");
    if (!o.init.empty()) run.trainer->load_weights(o.init);
    run.loop = std::make_unique<DilocoLoop>(*run.trainer, run.comms, o.diloco);
    if (!o.resume.empty()) run.loop->resume(o.resume);
    // An island kept at the last step's sync still has that sync to take.
    require(run.loop->last_outer_step() < o.last_step(),
            o.resume + ": the run is already at step " +
                std::to_string(run.trainer->steps_taken()) + ", nothing to train up to step " +
                std::to_string(o.last_step()) + " (raise --steps)");
}

// After setup, because it is collective over the island and setup may fail on one rank alone.
void connect_island(Run& run, const TrainOptions& o) {
    const Topology& t = run.comms.topology;
    const std::string who = "island " + std::to_string(t.island) + ", rank " +
                            std::to_string(t.local_rank) + " (world rank " +
                            std::to_string(t.world_rank) + ")";
    GradReducer average = island_average(*run.comms.island, run.device, o.device, who);
    run.nccl = static_cast<bool>(average);
    run.loop->set_island_average(std::move(average));
}

void run_train(TrainOptions& o, Comm& world) {
    // mpirun's SIGTERM when a rank dies, a supervisor's, a person's Ctrl-C: stop at a step
    // boundary and keep the round's progress; a rank that cannot (blocked on a lost peer)
    // is gone 30 s later.
    catch_stop_signals(30);
    Run run;
    run_agreed(world, [&] { setup(run, o, world); });
    run_or_abort(world, [&] {
        connect_island(run, o);
        TrainHooks hooks(run, o);
        try {
            run.loop->train(o.last_step(), hooks);
        } catch (const Interrupted&) {
            hooks.keep_progress();
            throw;
        }
        hooks.end(o.last_step());
    });
}

void add_model_options(CLI::App& cmd, TrainOptions& o) {
    const char* group = "Model";
    cmd.add_option("--preset", o.preset, "model shape: tiny, gpt2-124m, paper-60m, paper-150m, "
                                         "paper-400m")
        ->capture_default_str()->group(group);
    cmd.add_option("--init", o.init,
                   "start from these weights (a checkpoint or a Hugging Face GPT-2 directory) "
                   "with a fresh optimizer and schedule")
        ->group(group);
}

void add_batch_options(CLI::App& cmd, TrainOptions& o) {
    const char* group = "Data";
    add_data_options(cmd, o.data, o.val_fraction);
    for (const char* name : {"--data", "--val-fraction"}) cmd.get_option(name)->group(group);
    add_number(cmd, "--batch", o.inner.batch, kBatchRange,
               "sequences per micro-batch and rank, and per validation batch")
        ->group(group);
    add_list(cmd, "--island-batch", o.island_batch, number_in(kBatchRange),
             "sequences per micro-batch and rank of each island, in island order, e.g. "
             "16,2 for a slow second island (default: --batch everywhere)")
        ->group(group);
    add_number(cmd, "--seq", o.inner.seq, {.min = 1, .max = 1 << 20}, "tokens per sequence")
        ->group(group);
    add_number(cmd, "--grad-accum", o.inner.grad_accum, {.min = 1, .max = 1 << 20},
               "micro-batches per step: a step takes batch x grad-accum sequences per rank")
        ->group(group);
    // 2^50 keeps islands x tokens far from 64 bits.
    add_number(cmd, "--batch-tokens", o.batch_tokens, {.min = 0, .max = uint64_t(1) << 50},
               "tokens per step and island (sets --grad-accum; ddp: per island of the world; "
               "0: off)")
        ->group(group);
}

void add_optimizer_options(CLI::App& cmd, TrainOptions& o) {
    const char* group = "Optimizer (inner AdamW and its schedule)";
    LrSchedule& s = o.inner.schedule;
    add_number(cmd, "--steps", s.total_steps, {.min = 1, .max = kMaxSteps},
               "inner optimizer steps (the schedule's length)")
        ->group(group);
    // AdamW moves each weight by about lr per step: past 1 the run can only diverge.
    add_number(cmd, "--lr", s.max_lr, {.min = 0, .max = 1, .min_open = true},
               "peak learning rate")
        ->group(group);
    add_number(cmd, "--warmup", s.warmup_steps, {.min = 0, .max = kMaxSteps},
               "linear warm-up steps")
        ->group(group);
    add_number(cmd, "--min-lr-fraction", s.min_lr_fraction, {.min = 0, .max = 1},
               "cosine floor, fraction of --lr")
        ->group(group);
    add_number(cmd, "--weight-decay", o.inner.adamw.weight_decay, {.min = 0},
               "AdamW decoupled weight decay")
        ->group(group);
    add_number(cmd, "--grad-clip", o.inner.grad_clip, {.min = 0},
               "global gradient norm limit (0: off)")
        ->group(group);
    add_number(cmd, "--seed", o.inner.seed, {},
               "seed for initialisation, batches and islands' drop-out")
        ->group(group);
}

void add_island_options(CLI::App& cmd, TrainOptions& o) {
    const char* group = "Islands";
    DilocoConfig& d = o.diloco;
    add_enum_option(cmd, "--mode", d.mode, kModes, mode_name,
                    "local (islands never talk), ddp (all ranks every step) or diloco; "
                    "default: diloco with more than one island, else local")
        ->default_str("")->group(group);
    cmd.add_option("--islands", o.islands,
                   "number of islands (equal contiguous groups of ranks) or 'host'")
        ->capture_default_str()->group(group);
    cmd.add_option("--island-sizes", o.island_sizes, "ranks per island, e.g. 2,1,1")->group(group);
    cmd.add_option("--island-ids", o.island_ids,
                   "each island's id, e.g. 0,2: the state, progress and data stream it takes up "
                   "(default: its index; diloco supervise gives {island-ids})")
        ->group(group);
    cmd.add_flag("--weight-by-tokens", d.weight_by_tokens,
                 "weigh islands by the tokens they trained on")->group(group);
    cmd.add_option("--island-schedule", d.island_schedule,
                   "islands per outer step, e.g. 1-4:0+1,5-8:0+1+2+3 (others: all)")->group(group);
    add_number(cmd, "--drop-prob", d.drop_prob, {.min = 0, .max = 1, .max_open = true},
               "probability that an island misses an outer sync (seeded)")
        ->group(group);
    add_number(cmd, "--wan-gbps", o.wan.gbps, {.min = 0},
               "simulate a link of this many Gbit/s between islands (0: none); a link on which "
               "one sync would take longer than --sync-timeout is refused at start")
        ->group(group);
    add_number(cmd, "--wan-latency-ms", o.wan.latency_ms, {.min = 0},
               "simulated latency of each collective between islands")
        ->group(group);
    add_number(cmd, "--sync-timeout", o.sync_timeout, {.min = 0, .max = kWeekSeconds},
               "seconds a call between islands may wait for another rank before the run "
               "stops with an error naming the ranks and islands that did not answer (0: "
               "no limit)")
        ->group(group);
}

void add_outer_options(CLI::App& cmd, TrainOptions& o) {
    const char* group = "Outer step (diloco)";
    DilocoConfig& d = o.diloco;
    add_number(cmd, "--inner-steps", d.inner_steps, {.min = 1, .max = kMaxSteps},
               "H: inner steps between outer steps")
        ->group(group);
    add_enum_option(cmd, "--outer-opt", d.outer.kind,
                    kOuterOpts, outer_opt_name,
                    "nesterov, sgd or adam")
        ->group(group);
    add_number(cmd, "--outer-lr", d.outer.lr, {.min = 0, .min_open = true}, "outer learning rate")
        ->group(group);
    add_number(cmd, "--outer-momentum", d.outer.momentum, kFractionBelowOne,
               "outer momentum (Adam: beta1)")
        ->group(group);
    add_number(cmd, "--outer-beta2", d.outer.beta2, kFractionBelowOne, "outer Adam beta2")
        ->group(group);
    add_number(cmd, "--outer-eps", d.outer.eps, {.min = 0, .min_open = true},
               "outer Adam epsilon")
        ->group(group);
    add_enum_option(cmd, "--outer-codec", d.codec,
                    kCodecs, codec_name,
                    "outer gradient on the wire: fp32, bf16, fp16, int8, int4 or e3m0")
        ->group(group);
    cmd.add_flag("--error-feedback", d.error_feedback,
                 "add what the codec lost to the next outer gradient")->group(group);
    add_number(cmd, "--outer-prune", d.prune, {.min = 0, .max = 1, .max_open = true},
               "zero this fraction of each tensor's outer gradient, smallest first")
        ->group(group);
}

void add_streaming_options(CLI::App& cmd, TrainOptions& o) {
    const char* group = "Streaming DiLoCo";
    DilocoConfig& d = o.diloco;
    add_number(cmd, "--fragments", d.fragments, {.min = 1, .max = 1024},
               "groups of layers syncing at staggered inner steps")
        ->group(group);
    add_number(cmd, "--overlap", d.overlap, {.min = 0, .max = kMaxSteps},
               "inner steps a fragment's sync runs in the background before its merge")
        ->group(group);
    add_number(cmd, "--merge-alpha", d.merge_alpha, {.min = 0, .max = 1},
               "weight of the local fragment when merging a late global one")
        ->group(group);
}

void add_output_options(CLI::App& cmd, TrainOptions& o) {
    const char* group = "Output";
    add_number(cmd, "--stop-at", o.stop_at, {.min = 0, .max = kMaxSteps},
               "stop after this step, keeping the schedule of --steps (to resume later; 0: at "
               "--steps)")
        ->group(group);
    add_number(cmd, "--eval-every", o.eval_every, {.min = 0, .max = kMaxSteps},
               "validate every N steps (diloco: at the outer step reaching each multiple; 0: "
               "never)")
        ->group(group);
    add_number(cmd, "--val-batches", o.val_batches, {.min = 1, .max = 1 << 20},
               "validation batches per evaluation")
        ->group(group);
    add_number(cmd, "--print-every", o.print_every, {.min = 1, .max = kMaxSteps},
               "print a step line every N steps")
        ->group(group);
    cmd.add_option("--log", o.log, "JSON-lines metrics file")->group(group);
    cmd.add_option("--save", o.save,
                   "checkpoint: a link to the newest complete save in DIR.steps/step-N, written "
                   "at the end")
        ->group(group);
    add_number(cmd, "--save-every", o.save_every, {.min = 0, .max = kMaxSteps},
               "also save every N steps (0: only at the end)")
        ->group(group);
    add_number(cmd, "--keep", o.keep, {.min = 0, .max = 1 << 20},
               "saves kept in DIR.steps, the newest (0: all)")
        ->group(group);
    cmd.add_option("--resume", o.resume, "checkpoint directory to continue from")->group(group);
    add_number(cmd, "--peak-tflops", o.peak_tflops, {.min = 0},
               "the device's peak rate for MFU (0: the GPU table, or the CPU's matmul rate "
               "measured at start)")
        ->group(group);
}

}  // namespace

void add_train_command(CLI::App& app, TrainJob& job) {
    auto o = std::make_shared<TrainOptions>();
    CLI::App* cmd = app.add_subcommand("train", "train a GPT: one process, or islands under mpirun");
    add_config_option(*cmd, o->config);
    add_model_options(*cmd, *o);
    add_batch_options(*cmd, *o);
    add_optimizer_options(*cmd, *o);
    add_island_options(*cmd, *o);
    add_outer_options(*cmd, *o);
    add_streaming_options(*cmd, *o);
    add_device_options(*cmd, o->device);
    add_island_devices_option(*cmd, o->device);
    for (const char* name : {"--device", "--island-devices", "--precision", "--share-gpus",
                             "--island-timeout", "--attention"})
        cmd->get_option(name)->group("Device");
    add_output_options(*cmd, *o);
    cmd->callback([o, cmd, &job] {
        apply_config_file(*cmd, o->config);
        o->mode_given = cmd->get_option("--mode")->count() > 0;
        job = [o](Comm& world) { run_train(*o, world); };
    });
}

}  // namespace diloco
