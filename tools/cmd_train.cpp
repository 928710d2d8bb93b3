// `diloco train`: binds the run's options (flags or a TOML --config) into the library's
// configurations, checks them, wires topology, data, model, inner trainer and DiLoCo loop, and
// hands the loop its hooks: lines, metrics, evaluations and checkpoints. Under mpirun every rank
// runs this; rank 0 alone prints and logs.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>

#include "checkpoint/writer.h"
#include "comm/ranks.h"
#include "tools/commands.h"
#include "tools/config_file.h"
#include "tools/data_source.h"
#include "tools/train_hooks.h"
#include "util/error.h"
#include "util/stop_signal.h"

namespace diloco {

namespace {

void check_options(const TrainOptions& o) {
    const InnerConfig& c = o.inner;
    require(o.steps() > 0, "--steps must be positive, got " + std::to_string(o.steps()));
    require(c.batch > 0, "--batch must be positive, got " + std::to_string(c.batch));
    require(c.seq > 0, "--seq must be positive, got " + std::to_string(c.seq));
    require(c.grad_accum > 0, "--grad-accum must be positive, got " + std::to_string(c.grad_accum));
    require(o.batch_tokens == 0 || c.grad_accum == 1,
            "--grad-accum and --batch-tokens exclude each other: give one");
    require(o.peak_tflops >= 0 && std::isfinite(o.peak_tflops),
            "--peak-tflops must be a positive rate (0: from the table or measured)");
    const LrSchedule& s = c.schedule;
    // AdamW moves each weight by about lr per step: past 1 the run can only diverge.
    require(s.max_lr > 0 && s.max_lr <= 1,
            "--lr must be within (0, 1], got " + std::to_string(s.max_lr));
    require(s.warmup_steps >= 0, "--warmup must not be negative");
    require(s.min_lr_fraction >= 0 && s.min_lr_fraction <= 1,
            "--min-lr-fraction must be within [0, 1], got " + std::to_string(s.min_lr_fraction));
    require(c.adamw.weight_decay >= 0 && std::isfinite(c.adamw.weight_decay),
            "--weight-decay must be finite and not negative, got " +
                std::to_string(c.adamw.weight_decay));
    require(c.grad_clip >= 0 && std::isfinite(c.grad_clip),
            "--grad-clip must be finite and not negative (0: off), got " +
                std::to_string(c.grad_clip));
    require(o.val_batches > 0, "--val-batches must be positive, got " +
                                   std::to_string(o.val_batches));
    require(o.save_every >= 0, "--save-every must not be negative, got " +
                                   std::to_string(o.save_every));
    require(o.sync_timeout >= 0 && std::isfinite(o.sync_timeout),
            "--sync-timeout must be a finite number of seconds (0: none)");
    require(o.keep >= 0, "--keep must not be negative (0: keep every save), got " +
                             std::to_string(o.keep));
    require(o.stop_at >= 0 && o.stop_at <= o.steps(), "--stop-at must be within 0..--steps");
    require(o.print_every > 0, "--print-every must be positive, got " +
                                   std::to_string(o.print_every));
    const int h = o.diloco.inner_steps;
    require(h > 0, "--inner-steps must be positive (H = " + std::to_string(h) + ")");
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
    if (!o.save.empty() && t.world_rank == 0) check_checkpoint_root(o.save);
    if (t.world_rank == 0)  // before the model: the probe's buffers come and go
        run.peak = peak_rate(*run.device.backend, run.device.gpu >= 0, o.peak_tflops);
    GptConfig model = preset_config(o.preset, run.data->vocab());
    model.eot = run.data->eot();
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
    cmd.add_option("--batch", o.inner.batch,
                   "sequences per micro-batch and rank, and per validation batch")
        ->capture_default_str()->group(group);
    cmd.add_option("--island-batch", o.island_batch,
                   "sequences per micro-batch and rank of each island, in island order, e.g. "
                   "16,2 for a slow second island (default: --batch everywhere)")
        ->delimiter(',')->check(CLI::PositiveNumber)->group(group);
    cmd.add_option("--seq", o.inner.seq, "tokens per sequence")
        ->capture_default_str()->group(group);
    cmd.add_option("--grad-accum", o.inner.grad_accum,
                   "micro-batches per step: a step takes batch x grad-accum sequences per rank")
        ->capture_default_str()->group(group);
    cmd.add_option("--batch-tokens", o.batch_tokens,
                   "tokens per step and island (sets --grad-accum; ddp: per island of the world)")
        ->group(group);
}

void add_optimizer_options(CLI::App& cmd, TrainOptions& o) {
    const char* group = "Optimizer (inner AdamW and its schedule)";
    LrSchedule& s = o.inner.schedule;
    cmd.add_option("--steps", s.total_steps, "inner optimizer steps (the schedule's length)")
        ->capture_default_str()->group(group);
    cmd.add_option("--lr", s.max_lr, "peak learning rate")->capture_default_str()->group(group);
    cmd.add_option("--warmup", s.warmup_steps, "linear warm-up steps")
        ->capture_default_str()->group(group);
    cmd.add_option("--min-lr-fraction", s.min_lr_fraction, "cosine floor, fraction of --lr")
        ->capture_default_str()->group(group);
    cmd.add_option("--weight-decay", o.inner.adamw.weight_decay, "AdamW decoupled weight decay")
        ->capture_default_str()->group(group);
    cmd.add_option("--grad-clip", o.inner.grad_clip, "global gradient norm limit (0: off)")
        ->capture_default_str()->group(group);
    cmd.add_option("--seed", o.inner.seed,
                   "seed for initialisation, batches and islands' drop-out")
        ->check(not_negative())->capture_default_str()->group(group);
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
    cmd.add_option("--drop-prob", d.drop_prob,
                   "probability that an island misses an outer sync (seeded)")
        ->capture_default_str()->group(group);
    cmd.add_option("--wan-gbps", o.wan.gbps,
                   "simulate a link of this many Gbit/s between islands (0: none)")
        ->capture_default_str()->group(group);
    cmd.add_option("--wan-latency-ms", o.wan.latency_ms,
                   "simulated latency of each collective between islands")
        ->capture_default_str()->group(group);
    cmd.add_option("--sync-timeout", o.sync_timeout,
                   "seconds a call between islands may wait for another rank before the run "
                   "stops with an error naming the ranks and islands that did not answer (0: "
                   "no limit)")
        ->capture_default_str()->group(group);
}

void add_outer_options(CLI::App& cmd, TrainOptions& o) {
    const char* group = "Outer step (diloco)";
    DilocoConfig& d = o.diloco;
    cmd.add_option("--inner-steps", d.inner_steps, "H: inner steps between outer steps")
        ->capture_default_str()->group(group);
    add_enum_option(cmd, "--outer-opt", d.outer.kind,
                    kOuterOpts, outer_opt_name,
                    "nesterov, sgd or adam")
        ->group(group);
    cmd.add_option("--outer-lr", d.outer.lr, "outer learning rate")
        ->capture_default_str()->group(group);
    cmd.add_option("--outer-momentum", d.outer.momentum, "outer momentum (Adam: beta1)")
        ->capture_default_str()->group(group);
    cmd.add_option("--outer-beta2", d.outer.beta2, "outer Adam beta2")
        ->capture_default_str()->group(group);
    cmd.add_option("--outer-eps", d.outer.eps, "outer Adam epsilon")
        ->capture_default_str()->group(group);
    add_enum_option(cmd, "--outer-codec", d.codec,
                    kCodecs, codec_name,
                    "outer gradient on the wire: fp32, bf16, fp16, int8, int4 or e3m0")
        ->group(group);
    cmd.add_flag("--error-feedback", d.error_feedback,
                 "add what the codec lost to the next outer gradient")->group(group);
    cmd.add_option("--outer-prune", d.prune,
                   "zero this fraction of each tensor's outer gradient, smallest first")
        ->capture_default_str()->group(group);
}

void add_streaming_options(CLI::App& cmd, TrainOptions& o) {
    const char* group = "Streaming DiLoCo";
    DilocoConfig& d = o.diloco;
    cmd.add_option("--fragments", d.fragments,
                   "groups of layers syncing at staggered inner steps")
        ->capture_default_str()->group(group);
    cmd.add_option("--overlap", d.overlap,
                   "inner steps a fragment's sync runs in the background before its merge")
        ->capture_default_str()->group(group);
    cmd.add_option("--merge-alpha", d.merge_alpha,
                   "weight of the local fragment when merging a late global one")
        ->capture_default_str()->group(group);
}

void add_output_options(CLI::App& cmd, TrainOptions& o) {
    const char* group = "Output";
    cmd.add_option("--stop-at", o.stop_at,
                   "stop after this step, keeping the schedule of --steps (to resume later)")
        ->group(group);
    cmd.add_option("--eval-every", o.eval_every,
                   "validate every N steps (diloco: at the outer step reaching each multiple)")
        ->capture_default_str()->group(group);
    cmd.add_option("--val-batches", o.val_batches, "validation batches per evaluation")
        ->capture_default_str()->group(group);
    cmd.add_option("--print-every", o.print_every, "print a step line every N steps")
        ->capture_default_str()->group(group);
    cmd.add_option("--log", o.log, "JSON-lines metrics file")->group(group);
    cmd.add_option("--save", o.save,
                   "checkpoint: a link to the newest complete save in DIR.steps/step-N, written "
                   "at the end")
        ->group(group);
    cmd.add_option("--save-every", o.save_every, "also save every N steps")->group(group);
    cmd.add_option("--keep", o.keep, "saves kept in DIR.steps, the newest (0: all)")
        ->capture_default_str()->group(group);
    cmd.add_option("--resume", o.resume, "checkpoint directory to continue from")->group(group);
    cmd.add_option("--peak-tflops", o.peak_tflops,
                   "the device's peak rate for MFU (default: the GPU table, or the CPU's "
                   "matmul rate measured at start)")
        ->group(group);
}

}  // namespace

void add_train_command(CLI::App& app, Comm& world) {
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
    cmd->callback([o, cmd, &world] {
        apply_config_file(*cmd, o->config);
        o->mode_given = cmd->get_option("--mode")->count() > 0;
        run_train(*o, world);
    });
}

}  // namespace diloco
