// `diloco train`'s output: the header and placements, step and validation lines, and the
// metrics records of each event.
#include "tools/train_report.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "build_info.h"
#include "model/flops.h"
#include "util/checksum.h"
#include "util/error.h"

namespace diloco {

namespace {

// A float as the double that prints as its shortest decimal: 0.002, not 0.0020000000949949026.
double plain(float x) {
    char text[32];
    const auto [end, error] = std::to_chars(text, text + sizeof text - 1, x);
    require(error == std::errc(), "a float that does not print");
    *end = '\0';
    return std::strtod(text, nullptr);
}

// Seconds since the Unix epoch, to the microsecond: every record's "time".
double unix_time() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

nlohmann::json event(const char* name) { return {{"event", name}, {"time", unix_time()}}; }

// Every option of the run, as resolved (the mode, the islands, the micro-batches), by its name
// with underscores: with the build, what it takes to run it again.
nlohmann::json config_record(const TrainOptions& o, Run& run) {
    const InnerConfig& c = run.trainer->config();
    const DilocoConfig& d = o.diloco;
    const Topology& t = run.comms.topology;
    return {{"preset", o.preset},
            {"data", run.data->source()},
            {"val_fraction", o.val_fraction},
            {"batch", o.inner.batch},
            {"island_batch", o.island_batch},
            {"seq", c.seq},
            {"grad_accum", c.grad_accum},
            {"batch_tokens", o.batch_tokens},
            {"steps", c.schedule.total_steps},
            {"lr", plain(c.schedule.max_lr)},
            {"warmup", c.schedule.warmup_steps},
            {"min_lr_fraction", plain(c.schedule.min_lr_fraction)},
            {"weight_decay", plain(c.adamw.weight_decay)},
            {"grad_clip", plain(c.grad_clip)},
            {"seed", c.seed},
            {"mode", mode_name(d.mode)},
            {"ranks", t.world_size},
            {"islands", t.islands},
            {"island_sizes", t.island_sizes},
            {"island_ids", t.island_ids},
            {"sync_timeout", o.sync_timeout},
            {"weight_by_tokens", d.weight_by_tokens},
            {"island_schedule", d.island_schedule},
            {"drop_prob", d.drop_prob},
            {"wan_gbps", o.wan.gbps},
            {"wan_latency_ms", o.wan.latency_ms},
            {"inner_steps", d.inner_steps},
            {"outer_opt", outer_opt_name(d.outer.kind)},
            {"outer_lr", plain(d.outer.lr)},
            {"outer_momentum", plain(d.outer.momentum)},
            {"outer_beta2", plain(d.outer.beta2)},
            {"outer_eps", plain(d.outer.eps)},
            {"outer_codec", codec_name(d.codec)},
            {"error_feedback", d.error_feedback},
            {"outer_prune", d.prune},
            {"fragments", d.fragments},
            {"overlap", d.overlap},
            {"merge_alpha", plain(d.merge_alpha)},
            {"device", run.device.backend->name()},
            {"island_devices", o.device.island_devices},
            {"precision", o.device.precision},
            {"attention", o.device.attention},
            {"share_gpus", o.device.share_gpus},
            {"island_timeout", o.device.island_timeout_s},
            {"stop_at", o.stop_at},
            {"eval_every", o.eval_every},
            {"val_batches", o.val_batches},
            {"print_every", o.print_every},
            {"log", o.log},
            {"save", o.save},
            {"save_every", o.save_every},
            {"keep", o.keep},
            {"resume", o.resume},
            {"init", o.init},
            {"peak_tflops", o.peak_tflops}};
}

// "42.0s", "3m05s", "2h07m": a duration for a person.
std::string duration_text(double seconds) {
    char text[32];
    const long s = std::lround(seconds);
    if (seconds < 60) std::snprintf(text, sizeof text, "%.1fs", seconds);
    else if (s < 3600) std::snprintf(text, sizeof text, "%ldm%02lds", s / 60, s % 60);
    else std::snprintf(text, sizeof text, "%ldh%02ldm", s / 3600, s % 3600 / 60);
    return text;
}

nlohmann::json traffic_record(Run& run, int step) {
    const Topology& t = run.comms.topology;
    const SyncStats& s = run.loop->traffic();
    double totals[4] = {double(s.bytes_sent), double(s.bytes_received), s.seconds,
                        s.wait_seconds};
    run.comms.world->allreduce_sum(totals, 4);  // instrumentation, not counted as traffic
    const size_t n_params = run.trainer->model().num_params();
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
    std::vector<double> sums(t.world_size, 0.0);
    run.loop->read_global_params([&](const float* params, size_t n) {
        sums[t.world_rank] = fingerprint32(params, n * sizeof(float));
    });
    run.comms.world->allreduce_sum(sums.data(), sums.size());
    return std::vector<uint32_t>(sums.begin(), sums.end());
}

// Every rank's place, printed by rank 0 in rank order, so a wrong GPU mapping shows at the
// first glance and never interleaves with rank 0's lines.
void print_placements(Run& run) {
    const Topology& t = run.comms.topology;
    const std::string id =
        t.island_id() == t.island ? "" : "id " + std::to_string(t.island_id()) + ", ";
    char line[512];
    std::snprintf(line, sizeof line,
                  "rank %d on %s (rank %d of %d on the machine): island %d (%srank %d of %d in "
                  "it), %s\n",
                  t.world_rank, run.comms.world->host().c_str(), run.comms.node.rank,
                  run.comms.node.size, t.island, id.c_str(), t.local_rank, t.local_size,
                  run.device.backend->name().c_str());
    const std::string mine = line;
    std::vector<double> lengths(t.world_size, 0.0);
    lengths[t.world_rank] = double(mine.size());
    run.comms.world->allreduce_sum(lengths.data(), lengths.size());
    const std::vector<size_t> counts(lengths.begin(), lengths.end());
    size_t total = 0;
    for (size_t c : counts) total += c;
    std::string all(total, '\0');
    run.comms.world->allgatherv(mine.data(), all.data(), counts);
    if (t.world_rank == 0) std::fputs(all.c_str(), stdout);
}

// Tokens/s counts every rank's tokens over rank 0's step time; MFU is rank 0's own.
Throughput make_throughput(Run& run) {
    const InnerConfig& c = run.trainer->config();
    const size_t rank_tokens = size_t(c.batch) * c.grad_accum * c.seq;
    double all_tokens = double(rank_tokens);
    run.comms.world->allreduce_sum(&all_tokens, 1);
    return Throughput(*run.device.backend, run.peak,
                      training_flops_per_token(run.trainer->model().config(), c.seq), rank_tokens,
                      size_t(all_tokens));
}

// The first line says what runs, and why the mode is what it is when no --mode chose it.
void print_header(Run& run, const TrainOptions& o) {
    const Topology& t = run.comms.topology;
    const std::string why = o.mode_given ? ""
                            : t.islands > 1 ? " (no --mode: diloco, as for any run of islands)"
                                            : " (no --mode: local, as for one island)";
    std::printf("diloco train: mode %s%s, %d island%s of %s rank(s), preset %s (%zu parameters), "
                "data %s (%s), %s backend%s\n",
                mode_name(o.mode()), why.c_str(), t.islands, t.islands == 1 ? "" : "s",
                o.island_sizes.empty() ? std::to_string(t.local_size).c_str()
                                       : o.island_sizes.c_str(),
                o.preset.c_str(), run.trainer->model().num_params(), run.data->source().c_str(),
                run.data->describe().c_str(), run.device.backend->name().c_str(),
                run.nccl ? ", island gradients over NCCL" : "");
    std::fflush(stdout);
}

// What a summary of runs needs to tell them apart, carried in every evaluation record.
nlohmann::json run_info(const TrainOptions& o) {
    const DilocoConfig& d = o.diloco;
    return {{"outer_codec", codec_name(d.codec)}, {"error_feedback", d.error_feedback},
            {"outer_prune", d.prune},             {"fragments", d.fragments},
            {"overlap", d.overlap},               {"wan_gbps", o.wan.gbps},
            {"wan_latency_ms", o.wan.latency_ms}};
}

}  // namespace

MetricsLog::MetricsLog(const std::string& path, bool append) : path_(path) {
    if (path.empty()) return;
    out_.open(path, append ? std::ios::app : std::ios::trunc);
    require(out_.good(), path + ": cannot open the metrics log for writing");
}

void MetricsLog::write(const nlohmann::json& record) {
    if (!out_.is_open()) return;
    out_ << record.dump() << "\n";
    out_.flush();  // a crashed run keeps every finished step
    require(out_.good(), path_ + ": cannot write the metrics log (disk full?)");
}

double RoundClock::utilisation() {
    const double wall = now() - start_, u = wall > 0 ? compute_ / wall : 1.0;
    start_ = now();
    compute_ = 0;
    return u;
}

double RoundClock::now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

TrainReport::TrainReport(Run& run, const TrainOptions& o)
    : run_(run), o_(o), lead_(run.comms.topology.world_rank == 0),
      log_(lead_ ? o.log : "", !o.resume.empty()), speed_(make_throughput(run)),
      first_step_(run.trainer->steps_taken()) {
    if (lead_) print_header(run, o);
    print_placements(run);
    log_.write(run_record());
    if (!lead_) return;
    const InnerConfig& c = run.trainer->config();
    if (c.grad_accum > 1)
        std::printf("gradient accumulation: %d micro-batches of %d x %d tokens per rank and step\n",
                    c.grad_accum, c.batch, c.seq);
    std::printf("%s\n", speed_.describe().c_str());
}

nlohmann::json TrainReport::run_record() const {
    nlohmann::json r = event("run");
    r["step"] = first_step_;  // 0, or the step a resumed run goes on from
    r["config"] = config_record(o_, run_);
    r["build"] = {{"version", DILOCO_VERSION},
                  {"git_commit", DILOCO_GIT_COMMIT},
                  {"device", run_.device.backend->device_name()}};
    return r;
}

void TrainReport::inner_step(const StepResult& r) {
    require(std::isfinite(r.loss), "step " + std::to_string(r.step) + ": the loss is " +
                                       std::to_string(r.loss) +
                                       "; stopping, nothing saved (try a lower --lr)");
    compute_s_ += r.ms / 1000;
    clock_.add_compute(r.ms / 1000);
    step_ = event("step");
    step_.update({{"step", r.step},     {"tokens", r.step * speed_.tokens_per_step()},
                  {"loss", r.loss},     {"lr", plain(r.lr)},
                  {"grad_norm", r.grad_norm}, {"ms", r.ms}});
    const std::string rate = speed_.add(step_, r.ms);
    if (lead_ && (r.step % o_.print_every == 0 || r.step == o_.last_step())) print_step(r, rate);
}

void TrainReport::print_step(const StepResult& r, const std::string& rate) const {
    const double elapsed = seconds_since_start();
    const double eta = elapsed / (r.step - first_step_) * (o_.last_step() - r.step);
    std::printf("step %5d/%d | loss %.4f | lr %.2e | norm %.3f | %s | %.1f ms | %s, ETA %s\n",
                r.step, o_.steps(), r.loss, r.lr, r.grad_norm, rate.c_str(), r.ms,
                duration_text(elapsed).c_str(), duration_text(eta).c_str());
}

void TrainReport::outer_step(const OuterReport& rep) {
    nlohmann::json r = event("outer");
    r["step"] = rep.step;
    if (run_.loop->fragments() > 1) r["fragment"] = rep.fragment;
    r["outer_step"] = rep.outer_step;
    r["island_loss"] = rep.island_loss;
    r["islands_present"] = rep.present;
    r["param_checksums"] = param_checksums(run_);
    r.update(outer_traffic(rep));
    if (lead_) print_outer(rep, r);
    outer_.push_back(std::move(r));
}

// This sync's bytes over the world (an instrumentation collective, like the checksums) beside
// the formula's, and rank 0's split of the outer step's time.
nlohmann::json TrainReport::outer_traffic(const OuterReport& rep) {
    const Topology& t = run_.comms.topology;
    double sent = double(rep.sync.bytes_sent);
    run_.comms.world->allreduce_sum(&sent, 1);
    uint64_t formula = 0;
    for (int i = 0; i < t.islands; i++)
        if (rep.present[i])
            formula += island_bytes_sent(rep.values, t.islands, t.uniform() ? t.local_size : 1,
                                         i, o_.diloco.codec);
    const OuterSplit& s = rep.sync.split;
    return {{"bytes_sent", sent},
            {"bytes_formula", double(formula)},
            {"sync_ms",
             {{"download", s.download * 1e3},
              {"codec", s.codec * 1e3},
              {"exchange", s.exchange * 1e3},
              {"optimizer", s.optimizer * 1e3},
              {"upload", s.upload * 1e3},
              {"total", s.total() * 1e3}}}};
}

void TrainReport::print_outer(const OuterReport& rep, const nlohmann::json& r) const {
    const nlohmann::json& ms = r["sync_ms"];
    const std::string fragment =
        run_.loop->fragments() > 1 ? " fragment " + std::to_string(rep.fragment) : "";
    std::printf("outer %4d%s at step %d | %.1f ms: download %.1f, codec %.1f, exchange %.1f, "
                "optimizer %.1f, upload %.1f | %.1f MB sent\n",
                rep.outer_step, fragment.c_str(), rep.step, ms["total"].get<double>(),
                ms["download"].get<double>(), ms["codec"].get<double>(),
                ms["exchange"].get<double>(), ms["optimizer"].get<double>(),
                ms["upload"].get<double>(), r["bytes_sent"].get<double>() / 1e6);
}

void TrainReport::step_done(bool round_end) {
    // No step record: the sync of a round whose steps a resumed island had kept.
    const bool stepped = !step_.is_null();
    if (round_end && stepped) step_["utilisation"] = clock_.utilisation();
    clock_.pause();
    paused_at_ = seconds_since_start();
    if (stepped) log_.write(std::exchange(step_, nullptr));
    for (const nlohmann::json& r : outer_) log_.write(r);
    outer_.clear();
}

void TrainReport::evaluation(int step, double val) {
    nlohmann::json r = event("eval");
    r.update({{"step", step}, {"val_loss", val}, {"val_ppl", std::exp(val)}});
    r.update(traffic_record(run_, step));
    r["compute_s"] = compute_s_;
    r["wall_s"] = paused_at_ - paused_s_;  // training only: no evaluation or saving
    r.update(run_info(o_));
    r.update(speed_.info());
    log_.write(r);
    if (lead_)
        std::printf("step %5d/%d | val loss %.4f | val ppl %.3f | across islands %.3g MB\n", step,
                    o_.steps(), val, std::exp(val), r["bytes_sent"].get<double>() / 1e6);
}

void TrainReport::flush() const {
    if (lead_) std::fflush(stdout);
}

void TrainReport::resume() {
    clock_.resume();
    paused_s_ += seconds_since_start() - paused_at_;
}

void TrainReport::end(int step) {
    nlohmann::json r = event("end");
    r.update({{"step", step},
              {"steps_run", step - first_step_},
              {"seconds", seconds_since_start()}});
    log_.write(r);
}

double TrainReport::seconds_since_start() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

}  // namespace diloco
