// `diloco train`: parses the run's options (flags or a TOML --config), wires topology, data,
// model, inner trainer and DiLoCo loop, and prints step lines, JSON metrics and checkpoints.
// Under mpirun every rank runs this; rank 0 alone prints and logs.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>

#include "comm/wan.h"
#include "data/tokenizer.h"
#include "model/flops.h"
#include "optim/checkpoint_writer.h"
#include "optim/diloco.h"
#include "tools/commands.h"
#include "tools/config_file.h"
#include "tools/data_source.h"
#include "tools/device.h"
#include "tools/ranks.h"
#include "tools/throughput.h"
#include "util/checksum.h"
#include "util/error.h"
#include "util/files.h"

namespace diloco {

namespace {

struct TrainOptions {
    std::string config;
    std::string preset = "tiny";
    std::string data;  // empty: the built-in corpus
    double val_fraction = 0.1;
    int steps = 1000;
    int stop_at = 0;
    int batch = 16;
    int grad_accum = 1;
    uint64_t batch_tokens = 0;
    int seq = 128;
    float lr = 1e-3f;
    int warmup = 100;
    float min_lr_fraction = 0.1f;
    float weight_decay = 0.1f;
    float grad_clip = 1.0f;
    uint64_t seed = 1337;
    int eval_every = 100;
    int val_batches = 20;
    std::string log;
    std::string save;
    int save_every = 0;
    int keep = 3;
    double sync_timeout = 600;
    std::string resume;
    std::string init;
    DeviceOptions device;
    std::string mode = "local";
    std::string islands = "1";
    std::string island_sizes;
    int inner_steps = 100;
    std::string outer_opt = "nesterov";
    float outer_lr = 0.7f;
    float outer_momentum = 0.9f;
    float outer_eps = 1e-8f;
    bool weight_by_tokens = false;
    std::string island_schedule;
    double drop_prob = 0;
    std::string outer_codec = "fp32";
    bool error_feedback = false;
    double outer_prune = 0;
    int fragments = 1;
    int overlap = 0;
    float merge_alpha = 0;
    WanLink wan;
    double peak_tflops = 0;
};

void check_options(const TrainOptions& o, Mode mode) {
    require(o.steps > 0, "--steps must be positive, got " + std::to_string(o.steps));
    require(o.batch > 0, "--batch must be positive, got " + std::to_string(o.batch));
    require(o.seq > 0, "--seq must be positive, got " + std::to_string(o.seq));
    require(o.grad_accum > 0, "--grad-accum must be positive, got " + std::to_string(o.grad_accum));
    require(o.batch_tokens == 0 || o.grad_accum == 1,
            "--grad-accum and --batch-tokens exclude each other: give one");
    require(o.peak_tflops >= 0 && std::isfinite(o.peak_tflops),
            "--peak-tflops must be a positive rate (0: from the table or measured)");
    // AdamW moves each weight by about lr per step: past 1 the run can only diverge.
    require(o.lr > 0 && o.lr <= 1, "--lr must be within (0, 1], got " + std::to_string(o.lr));
    require(o.warmup >= 0, "--warmup must not be negative");
    require(o.min_lr_fraction >= 0 && o.min_lr_fraction <= 1,
            "--min-lr-fraction must be within [0, 1], got " + std::to_string(o.min_lr_fraction));
    require(o.weight_decay >= 0 && std::isfinite(o.weight_decay),
            "--weight-decay must be finite and not negative, got " + std::to_string(o.weight_decay));
    require(o.grad_clip >= 0 && std::isfinite(o.grad_clip),
            "--grad-clip must be finite and not negative (0: off), got " +
                std::to_string(o.grad_clip));
    require(o.val_batches > 0, "--val-batches must be positive, got " +
                                   std::to_string(o.val_batches));
    require(o.save_every >= 0, "--save-every must not be negative, got " +
                                   std::to_string(o.save_every));
    require(o.sync_timeout >= 0 && std::isfinite(o.sync_timeout),
            "--sync-timeout must be a finite number of seconds (0: none)");
    require(o.keep >= 0, "--keep must not be negative (0: keep every save), got " +
                             std::to_string(o.keep));
    require(o.stop_at >= 0 && o.stop_at <= o.steps, "--stop-at must be within 0..--steps");
    require(o.inner_steps > 0, "--inner-steps must be positive (H = " +
                                   std::to_string(o.inner_steps) + ")");
    if (mode != Mode::diloco) return;
    // Checkpoints and the end of a run fall on outer-step boundaries.
    auto boundary = [&](int step, const char* what) {
        require(step % o.inner_steps == 0, std::string(what) + " " + std::to_string(step) +
                                               " is not a multiple of --inner-steps " +
                                               std::to_string(o.inner_steps));
    };
    boundary(o.steps, "--steps");
    boundary(o.stop_at, "--stop-at");
    boundary(o.save_every, "--save-every");
    require(o.overlap == 0 || (o.save_every == 0 && o.stop_at == 0),
            "--save-every and --stop-at need every sync merged: not with --overlap > 0");
}

// Micro-batches per step: --grad-accum, or what --batch-tokens asks of this rank's island
// (ddp: of every island, the world's step spread evenly over all ranks).
int grad_accum(const TrainOptions& o, Mode mode, const Topology& t) {
    if (o.batch_tokens == 0) return o.grad_accum;
    const bool ddp = mode == Mode::ddp;
    const uint64_t tokens = o.batch_tokens * (ddp ? t.islands : 1);
    const int ranks = ddp ? t.world_size : t.local_size;
    const uint64_t micro = uint64_t(o.batch) * o.seq;
    require(tokens % (micro * ranks) == 0 && tokens / (micro * ranks) <= INT32_MAX,
            "--batch-tokens " + std::to_string(o.batch_tokens) +
                (ddp ? " x " + std::to_string(t.islands) + " islands" : std::string()) +
                " is not a whole number of micro-batches of --batch x --seq = " +
                std::to_string(micro) + " tokens on each of " + std::to_string(ranks) +
                (ddp ? " ranks" : " island ranks"));
    return static_cast<int>(tokens / (micro * ranks));
}

InnerConfig inner_config(const TrainOptions& o, Mode mode, const Topology& t) {
    InnerConfig c;
    c.batch = o.batch;
    c.grad_accum = grad_accum(o, mode, t);
    c.seq = o.seq;
    c.schedule = {o.lr, o.warmup, o.steps, o.min_lr_fraction};
    c.adamw.weight_decay = o.weight_decay;
    c.grad_clip = o.grad_clip;
    c.seed = o.seed;
    if (mode == Mode::ddp) {
        // One batch of world x B x grad_accum rows per step, each rank taking its rows.
        c.data_seed = o.seed;
        c.first_row = t.world_rank * o.batch * c.grad_accum;
    } else {
        // One stream per island (island 0's is the single-worker stream), rows per rank.
        c.data_seed = o.seed + 1000003ull * t.island;
        c.first_row = t.local_rank * o.batch * c.grad_accum;
    }
    // The batch stream is already one per set of ranks that share parameters: round alike there.
    c.adamw.rounding_seed = c.data_seed;
    return c;
}

DilocoConfig diloco_config(const TrainOptions& o, Mode mode) {
    DilocoConfig d;
    d.mode = mode;
    d.inner_steps = o.inner_steps;
    d.outer = {o.outer_opt, o.outer_lr, o.outer_momentum, 0.999f, o.outer_eps};
    d.weight_by_tokens = o.weight_by_tokens;
    d.drop_prob = o.drop_prob;
    d.island_schedule = o.island_schedule;
    d.seed = o.seed;
    d.codec = parse_codec(o.outer_codec);
    d.error_feedback = o.error_feedback;
    d.prune = o.outer_prune;
    d.fragments = o.fragments;
    d.overlap = o.overlap;
    d.merge_alpha = o.merge_alpha;
    return d;
}

// Islands read their own streams, except in ddp mode, where every rank takes rows of one stream.
std::unique_ptr<TrainData> load_data(const TrainOptions& o, Mode mode, const Topology& t) {
    bool one_stream = mode == Mode::ddp;
    return open_data(o.data, {one_stream ? 0 : t.island, one_stream ? 1 : t.islands, o.seq,
                              o.val_fraction});
}

// A checkpoint carries its tokenizer, for `diloco generate` and transformers' AutoTokenizer (a
// byte-level model: the Hugging Face files of its 256-byte vocabulary; a .bin shard has none).
void save_tokenizer(const TrainData& data, const std::string& dir) {
    if (!data.tokenizer_dir().empty()) Tokenizer::load(data.tokenizer_dir()).save_gpt2(dir);
    else if (data.vocab() == 256) save_byte_vocab_hf(dir);
}

class MetricsLog {
public:
    MetricsLog(const std::string& path, bool append) : path_(path) {
        if (path.empty()) return;
        out_.open(path, append ? std::ios::app : std::ios::trunc);
        require(out_.good(), path + ": cannot open the metrics log for writing");
    }
    void write(const nlohmann::json& record) {
        if (!out_.is_open()) return;
        out_ << record.dump() << "\n";
        out_.flush();  // a crashed run keeps every finished step
        require(out_.good(), path_ + ": cannot write the metrics log (disk full?)");
    }

private:
    std::string path_;
    std::ofstream out_;
};

// Everything a run holds, built collectively (same errors on every rank, or an agreed exit).
struct Run {
    Mode mode = Mode::local;
    IslandComms comms;
    std::unique_ptr<TrainData> data;
    Device device;
    std::unique_ptr<InnerTrainer> trainer;
    std::unique_ptr<DilocoLoop> loop;  // goes before the device: it may hold NCCL on its stream
    bool nccl = false;                 // the island averages gradients over NCCL
    PeakRate peak;                     // rank 0's, for its MFU
};

void setup(Run& run, const TrainOptions& o, Comm& world) {
    run.mode = parse_mode(o.mode);
    check_options(o, run.mode);
    validate(diloco_config(o, run.mode).outer);
    validate(o.wan);
    run.comms = connect_islands(world, o.islands, o.island_sizes);  // the only collective
    // Between islands a peer can die or be cut off: no call there waits forever.
    for (Comm* c : {&world, run.comms.cross.get(), run.comms.leaders.get()})
        c->set_deadline(o.sync_timeout, run.comms.topology.island_of_rank);
    if (o.wan.active()) {  // every message between islands crosses the simulated link
        run.comms.cross = std::make_unique<WanComm>(std::move(run.comms.cross), o.wan);
        run.comms.leaders = std::make_unique<WanComm>(std::move(run.comms.leaders), o.wan);
    }
    run.data = load_data(o, run.mode, run.comms.topology);
    if (!o.save.empty() && run.comms.topology.world_rank == 0) prepare_checkpoint_root(o.save);
    run.device = make_device(o.device, run.comms.node);
    if (run.comms.topology.world_rank == 0)  // before the model: the probe's buffers come and go
        run.peak = peak_rate(*run.device.backend, run.device.gpu >= 0, o.peak_tflops);
    GptConfig model = preset_config(o.preset, run.data->vocab());
    model.eot = run.data->eot();
    run.trainer = std::make_unique<InnerTrainer>(*run.device.backend, model, *run.data,
                                                 inner_config(o, run.mode, run.comms.topology));
    run.trainer->init_params();
    require(o.init.empty() || o.resume.empty(), "--init and --resume exclude each other");
    if (!o.init.empty()) run.trainer->load_weights(o.init);
    run.loop = std::make_unique<DilocoLoop>(*run.trainer, run.comms, diloco_config(o, run.mode));
    if (!o.resume.empty()) run.loop->resume(o.resume);
    const int last = o.stop_at > 0 ? o.stop_at : o.steps;
    require(run.trainer->steps_taken() < last,
            o.resume + ": the run is already at step " + std::to_string(run.trainer->steps_taken()) +
                ", nothing to train up to step " + std::to_string(last) + " (raise --steps)");
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

// DiLoCo evaluates its global model at the end of the round of H steps that reaches or
// follows each multiple of --eval-every (every round when it is <= H).
bool eval_due(Mode mode, bool round_end, int step, const TrainOptions& o) {
    if (o.eval_every <= 0) return false;
    if (mode != Mode::diloco) return step % o.eval_every == 0;
    return round_end && step % o.eval_every < o.inner_steps;
}

// Validation of what this rank's islands hold: the global model in ddp and diloco, each
// island's own model in local mode.
double evaluate(Run& run, int max_batches) {
    Comm& comm = run.mode == Mode::local ? *run.comms.island : *run.comms.world;
    return run.loop->evaluate(comm, max_batches);
}

nlohmann::json traffic_record(Run& run, int step, size_t n_params) {
    const Topology& t = run.comms.topology;
    const SyncStats& s = run.loop->traffic();
    double totals[4] = {double(s.bytes_sent), double(s.bytes_received), s.seconds,
                        s.wait_seconds};
    run.comms.world->allreduce_sum(totals, 4);  // instrumentation, not counted as traffic
    uint64_t ddp_per_step = 0;
    for (int i = 0; i < t.islands; i++)
        ddp_per_step += island_bytes_sent(n_params, t.islands, t.uniform() ? t.local_size : 1, i);
    return {{"bytes_sent", totals[0]},
            {"bytes_received", totals[1]},
            {"bytes_ddp_equivalent", t.islands > 1 ? double(ddp_per_step) * step : 0.0},
            {"sync_s", totals[2] / t.world_size},
            {"wait_s", totals[3] / t.world_size}};
}

// A checksum of the global parameters on every rank (instrumentation): after an outer step
// all of them must be equal, which the metrics let anyone check.
std::vector<uint32_t> param_checksums(Run& run) {
    const Topology& t = run.comms.topology;
    std::vector<float> params = run.loop->global_params();
    std::vector<double> sums(t.world_size, 0.0);
    sums[t.world_rank] = fnv1a32(params.data(), params.size() * sizeof(float));
    run.comms.world->allreduce_sum(sums.data(), sums.size());
    return std::vector<uint32_t>(sums.begin(), sums.end());
}

// Every rank says where it runs, so a wrong GPU mapping shows at the first glance.
void print_placement(Run& run) {
    const Topology& t = run.comms.topology;
    std::printf("rank %d on %s (rank %d of %d on the machine): island %d (rank %d of %d in it), %s\n",
                t.world_rank, run.comms.world->host().c_str(), run.comms.node.rank,
                run.comms.node.size, t.island, t.local_rank, t.local_size,
                run.device.backend->name().c_str());
    std::fflush(stdout);
}

// Tokens/s counts every rank's tokens over rank 0's step time; MFU is rank 0's own.
Throughput make_throughput(Run& run, const TrainOptions& o) {
    const InnerConfig& c = run.trainer->config();
    const size_t rank_tokens = size_t(c.batch) * c.grad_accum * c.seq;
    double all_tokens = double(rank_tokens);
    run.comms.world->allreduce_sum(&all_tokens, 1);
    return Throughput(*run.device.backend, run.peak,
                      training_flops_per_token(run.trainer->model().config(), o.seq), rank_tokens,
                      size_t(all_tokens));
}

void print_header(Run& run, const TrainOptions& o, const Throughput& speed) {
    const Topology& t = run.comms.topology;
    std::printf("diloco train: mode %s, %d island%s of %s rank(s), preset %s (%zu parameters), "
                "data %s (%s), %s backend%s\n",
                mode_name(run.mode), t.islands, t.islands == 1 ? "" : "s",
                o.island_sizes.empty() ? std::to_string(t.local_size).c_str()
                                       : o.island_sizes.c_str(),
                o.preset.c_str(), run.trainer->model().num_params(), run.data->source().c_str(),
                run.data->describe().c_str(), run.device.backend->name().c_str(),
                run.nccl ? ", island gradients over NCCL" : "");
    const int accum = run.trainer->config().grad_accum;
    if (accum > 1)
        std::printf("gradient accumulation: %d micro-batches of %d x %d tokens per rank and step\n",
                    accum, o.batch, o.seq);
    std::printf("%s\n", speed.describe().c_str());
}

// Compute utilisation per round of H inner steps: compute time over wall time, evaluation and
// checkpoints left out of both.
class RoundClock {
public:
    void add_compute(double seconds) { compute_ += seconds; }
    void pause() { paused_at_ = now(); }
    void resume() { start_ += now() - paused_at_; }
    // Utilisation since the last call, which starts the next round.
    double utilisation() {
        const double wall = now() - start_, u = wall > 0 ? compute_ / wall : 1.0;
        start_ = now();
        compute_ = 0;
        return u;
    }

private:
    static double now() {
        return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
            .count();
    }
    double start_ = now(), paused_at_ = 0, compute_ = 0;
};

// What a summary of runs needs to tell them apart, carried in every evaluation record.
nlohmann::json run_info(const TrainOptions& o) {
    return {{"outer_codec", o.outer_codec}, {"error_feedback", o.error_feedback},
            {"outer_prune", o.outer_prune}, {"fragments", o.fragments},
            {"overlap", o.overlap},         {"wan_gbps", o.wan.gbps},
            {"wan_latency_ms", o.wan.latency_ms}};
}

void add_outer_report(Run& run, const OuterReport& rep, nlohmann::json& rec) {
    if (run.mode == Mode::diloco && run.loop->fragments() > 1) rec["fragment"] = rep.fragment;
    rec["outer_step"] = rep.outer_step;
    rec["island_loss"] = rep.island_loss;
    rec["islands_present"] = rep.present;
    rec["param_checksums"] = param_checksums(run);
}

// What this rank writes of a checkpoint, copied now (rank 0: with the tokenizer).
std::function<void(const std::string&)> checkpoint_files(Run& run) {
    auto files = run.loop->snapshot();
    if (run.comms.topology.world_rank != 0) return files;
    return [files, &data = *run.data](const std::string& dir) {
        files(dir);
        save_tokenizer(data, dir);
    };
}

// Saves go to their own directories in the background; the marks that tell rank 0 a rank's
// part is written carry a number drawn for this run, which a crashed run's marks do not.
std::unique_ptr<CheckpointWriter> make_checkpoint_writer(Run& run, const TrainOptions& o) {
    if (o.save.empty()) return nullptr;
    uint64_t id = (uint64_t(std::random_device{}()) << 32) ^ std::random_device{}();
    run.comms.world->broadcast(&id, sizeof id, 0);
    constexpr double kSaveTimeout = 600;  // seconds for the other ranks' parts of a save
    return std::make_unique<CheckpointWriter>(o.save, run.comms.topology.world_rank,
                                              run.comms.topology.world_size, o.keep,
                                              kSaveTimeout, id);
}

void train_loop(Run& run, const TrainOptions& o) {
    const Topology& t = run.comms.topology;
    const bool lead = t.world_rank == 0;
    MetricsLog log(lead ? o.log : "", !o.resume.empty());
    print_placement(run);
    const Throughput speed = make_throughput(run, o);
    std::unique_ptr<CheckpointWriter> writer = make_checkpoint_writer(run, o);
    if (lead) print_header(run, o, speed);
    const int last = o.stop_at > 0 ? o.stop_at : o.steps;
    const size_t tokens_per_step = speed.tokens_per_step();
    const size_t n_params = run.trainer->model().num_params();
    double compute_s = 0, paused_s = 0;
    RoundClock clock;
    const auto start = std::chrono::steady_clock::now();
    auto seconds_since_start = [&] {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    };
    while (run.trainer->steps_taken() < last) {
        StepResult r = run.loop->inner_step();
        require(std::isfinite(r.loss), "step " + std::to_string(r.step) + ": the loss is " +
                                           std::to_string(r.loss) +
                                           "; stopping, nothing saved (try a lower --lr)");
        compute_s += r.ms / 1000;
        clock.add_compute(r.ms / 1000);
        nlohmann::json rec = {{"step", r.step},         {"tokens", r.step * tokens_per_step},
                              {"loss", r.loss},         {"lr", r.lr},
                              {"grad_norm", r.grad_norm}, {"ms", r.ms}};
        const std::string rate = speed.add(rec, r.ms);
        if (lead)
            std::printf("step %5d/%d | loss %.4f | lr %.2e | norm %.3f | %s | %.1f ms\n", r.step,
                        o.steps, r.loss, r.lr, r.grad_norm, rate.c_str(), r.ms);
        for (const OuterReport& rep : run.loop->sync_due(r.step == last))
            add_outer_report(run, rep, rec);
        const bool round = run.loop->round_end();
        if (round) rec["utilisation"] = clock.utilisation();
        clock.pause();
        const double paused_at = seconds_since_start();
        bool eval_now = r.step == last || eval_due(run.mode, round, r.step, o);
        if (eval_now) {
            double val = evaluate(run, o.val_batches);
            rec["val_loss"] = val;
            rec["val_ppl"] = std::exp(val);
            rec.update(traffic_record(run, r.step, n_params));
            rec["compute_s"] = compute_s;
            rec["wall_s"] = paused_at - paused_s;  // training only: no evaluation or saving
            rec.update(run_info(o));
            rec.update(speed.info());
            if (lead)
                std::printf("step %5d/%d | val loss %.4f | val ppl %.3f | across islands %.3g MB\n",
                            r.step, o.steps, val, std::exp(val),
                            (rec["bytes_sent"].get<double>()) / 1e6);
        }
        log.write(rec);
        if (lead) std::fflush(stdout);
        bool save_now = r.step == last || (o.save_every > 0 && r.step % o.save_every == 0);
        if (writer && save_now) {
            writer->save(r.step, checkpoint_files(run));
            if (r.step == last) writer->wait();  // the run ends with its checkpoint in place
        }
        clock.resume();
        paused_s += seconds_since_start() - paused_at;
    }
}

void run_train(const TrainOptions& o, Comm& world) {
    Run run;
    run_agreed(world, [&] { setup(run, o, world); });
    run_or_abort(world, [&] {
        connect_island(run, o);
        train_loop(run, o);
    });
}

}  // namespace

void add_train_command(CLI::App& app, Comm& world) {
    auto o = std::make_shared<TrainOptions>();
    CLI::App* cmd = app.add_subcommand("train", "train a GPT: one process, or islands under mpirun");
    add_config_option(*cmd, o->config);
    cmd->add_option("--preset", o->preset, "model shape: tiny, gpt2-124m, paper-60m, "
                                           "paper-150m, paper-400m")
        ->capture_default_str();
    add_data_options(*cmd, o->data, o->val_fraction);
    cmd->add_option("--steps", o->steps, "inner optimizer steps (the schedule's length)")
        ->capture_default_str();
    cmd->add_option("--stop-at", o->stop_at,
                    "stop after this step, keeping the schedule of --steps (to resume later)");
    cmd->add_option("--batch", o->batch, "sequences per micro-batch and rank")
        ->capture_default_str();
    cmd->add_option("--grad-accum", o->grad_accum,
                    "micro-batches per step: a step takes batch x grad-accum sequences per rank")
        ->capture_default_str();
    cmd->add_option("--batch-tokens", o->batch_tokens,
                    "tokens per step and island (sets --grad-accum; ddp: per island of the world)");
    cmd->add_option("--seq", o->seq, "tokens per sequence")->capture_default_str();
    cmd->add_option("--lr", o->lr, "peak learning rate")->capture_default_str();
    cmd->add_option("--warmup", o->warmup, "linear warm-up steps")->capture_default_str();
    cmd->add_option("--min-lr-fraction", o->min_lr_fraction, "cosine floor, fraction of --lr")
        ->capture_default_str();
    cmd->add_option("--weight-decay", o->weight_decay, "AdamW decoupled weight decay")
        ->capture_default_str();
    cmd->add_option("--grad-clip", o->grad_clip, "global gradient norm limit (0: off)")
        ->capture_default_str();
    cmd->add_option("--seed", o->seed, "seed for initialisation and batches")
        ->check(not_negative())
        ->capture_default_str();
    cmd->add_option("--eval-every", o->eval_every,
                    "validate every N steps (diloco: at the outer step reaching each multiple)")
        ->capture_default_str();
    cmd->add_option("--val-batches", o->val_batches, "validation batches per evaluation")
        ->capture_default_str();
    cmd->add_option("--log", o->log, "JSON-lines metrics file");
    cmd->add_option("--save", o->save,
                    "checkpoint: a link to the newest complete save in DIR.steps/step-N, written "
                    "at the end");
    cmd->add_option("--keep", o->keep, "saves kept in DIR.steps, the newest (0: all)")
        ->capture_default_str();
    cmd->add_option("--sync-timeout", o->sync_timeout,
                    "seconds a call between islands may wait for another rank before the run "
                    "stops with an error naming the ranks and islands that did not answer (0: "
                    "no limit)")
        ->capture_default_str();
    cmd->add_option("--save-every", o->save_every, "also save every N steps");
    cmd->add_option("--resume", o->resume, "checkpoint directory to continue from");
    cmd->add_option("--init", o->init,
                    "start from these weights (a checkpoint or a Hugging Face GPT-2 directory) "
                    "with a fresh optimizer and schedule");
    add_device_options(*cmd, o->device);
    cmd->add_option("--mode", o->mode, "local (islands never talk), ddp (all ranks every step) "
                                       "or diloco")
        ->capture_default_str();
    cmd->add_option("--islands", o->islands,
                    "number of islands (equal contiguous groups of ranks) or 'host'")
        ->capture_default_str();
    cmd->add_option("--island-sizes", o->island_sizes, "ranks per island, e.g. 2,1,1");
    cmd->add_option("--inner-steps", o->inner_steps, "H: inner steps between outer steps")
        ->capture_default_str();
    cmd->add_option("--outer-opt", o->outer_opt, "nesterov, sgd or adam")->capture_default_str();
    cmd->add_option("--outer-lr", o->outer_lr, "outer learning rate")->capture_default_str();
    cmd->add_option("--outer-momentum", o->outer_momentum, "outer momentum (Adam: beta1)")
        ->capture_default_str();
    cmd->add_option("--outer-eps", o->outer_eps, "outer Adam epsilon")->capture_default_str();
    cmd->add_flag("--weight-by-tokens", o->weight_by_tokens,
                  "weigh islands by the tokens they trained on");
    cmd->add_option("--island-schedule", o->island_schedule,
                    "islands per outer step, e.g. 1-4:0+1,5-8:0+1+2+3 (others: all)");
    cmd->add_option("--drop-prob", o->drop_prob,
                    "probability that an island misses an outer sync (seeded)")
        ->capture_default_str();
    cmd->add_option("--outer-codec", o->outer_codec,
                    "outer gradient on the wire: fp32, bf16, fp16, int8, int4 or e3m0")
        ->capture_default_str();
    cmd->add_flag("--error-feedback", o->error_feedback,
                  "add what the codec lost to the next outer gradient");
    cmd->add_option("--outer-prune", o->outer_prune,
                    "zero this fraction of each tensor's outer gradient, smallest first")
        ->capture_default_str();
    cmd->add_option("--fragments", o->fragments,
                    "Streaming DiLoCo: groups of layers syncing at staggered inner steps")
        ->capture_default_str();
    cmd->add_option("--overlap", o->overlap,
                    "inner steps a fragment's sync runs in the background before its merge")
        ->capture_default_str();
    cmd->add_option("--merge-alpha", o->merge_alpha,
                    "weight of the local fragment when merging a late global one")
        ->capture_default_str();
    cmd->add_option("--wan-gbps", o->wan.gbps,
                    "simulate a link of this many Gbit/s between islands (0: none)")
        ->capture_default_str();
    cmd->add_option("--wan-latency-ms", o->wan.latency_ms,
                    "simulated latency of each collective between islands")
        ->capture_default_str();
    cmd->add_option("--peak-tflops", o->peak_tflops,
                    "the device's peak rate for MFU (default: the GPU table, or the CPU's "
                    "matmul rate measured at start)");
    cmd->callback([o, cmd, &world] {
        apply_config_file(*cmd, o->config);
        run_train(*o, world);
    });
}

}  // namespace diloco
