// What `diloco train` shows while the loop runs: the header and each rank's placement, a step
// line per step (or per --print-every) with elapsed time and ETA, a validation line per
// evaluation, and the metrics log (JSON lines, one per event: run, step, outer, eval, end).
#pragma once

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tools/train_run.h"

namespace diloco {

class MetricsLog {
public:
    // An empty path writes nothing; `append` continues a resumed run's log.
    MetricsLog(const std::string& path, bool append);
    void write(const nlohmann::json& record);

private:
    std::string path_;
    std::ofstream out_;
};

// Compute utilisation per round of H inner steps: compute time over wall time, evaluation and
// checkpoints left out of both.
class RoundClock {
public:
    void add_compute(double seconds) { compute_ += seconds; }
    void pause() { paused_at_ = now(); }
    void resume() { start_ += now() - paused_at_; }
    // Utilisation since the last call, which starts the next round.
    double utilisation();

private:
    static double now();
    double start_ = now(), paused_at_ = 0, compute_ = 0;
};

// Collective: its constructor and every call run on all ranks (rank 0 alone prints and logs).
// The run's hooks (tools/train_hooks.h) call it in the loop's order.
class TrainReport {
public:
    TrainReport(Run& run, const TrainOptions& o);

    void inner_step(const StepResult& r);
    void outer_step(const OuterReport& rep);
    // Writes the step's records and stops the clocks until resume(): what follows (evaluation,
    // saving) counts as neither compute nor training time.
    void step_done(bool round_end);
    void evaluation(int step, double val_loss);
    void flush() const;
    void resume();
    // The last record: the run went to its last step.
    void end(int step);

private:
    nlohmann::json outer_traffic(const OuterReport& rep);
    void print_outer(const OuterReport& rep, const nlohmann::json& r) const;
    nlohmann::json run_record() const;
    double seconds_since_start() const;
    void print_step(const StepResult& r, const std::string& rate) const;

    Run& run_;
    const TrainOptions& o_;
    const bool lead_;
    MetricsLog log_;
    const Throughput speed_;
    const int first_step_;  // the step a resumed run starts from
    nlohmann::json step_;                 // this step's record, written when the step is done
    std::vector<nlohmann::json> outer_;  // and the records of its outer steps after it
    RoundClock clock_;
    double compute_s_ = 0, paused_s_ = 0, paused_at_ = 0;
    const std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace diloco
