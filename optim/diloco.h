// The DiLoCo loop, where islands meet optimizers: inner steps data parallel inside an island,
// and every H steps the islands' weighted mean and an outer step on the global parameters.
// The baselines share it: `local` (islands never talk) and `ddp` (every rank, every step).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "comm/outer_sync.h"
#include "comm/topology.h"
#include "optim/inner.h"
#include "optim/outer.h"

namespace diloco {

enum class Mode { local, ddp, diloco };
Mode parse_mode(const std::string& name);
const char* mode_name(Mode mode);

struct DilocoConfig {
    Mode mode = Mode::diloco;
    int inner_steps = 100;          // H
    OuterOptConfig outer;
    bool weight_by_tokens = false;  // weigh each island's parameters by the tokens it trained on
    double drop_prob = 0;           // each island misses each outer sync with this probability
    std::string island_schedule;    // "FROM-TO:I+J+...,..." outer steps (1-based) -> islands
    uint64_t seed = 1337;
};

// Which islands take part in outer step `outer_step` (1-based): the schedule, then drop-out.
std::vector<bool> islands_present(const DilocoConfig& config, int islands, int outer_step);

struct OuterReport {
    int outer_step = 0;
    std::vector<double> island_loss;  // mean training loss of each island over the round
    std::vector<bool> present;
    double total_weight = 0;
    SyncStats sync;                   // this rank's traffic in this outer step
};

class DilocoLoop {
public:
    // The inner trainer must hold this rank's starting parameters; they become the global ones.
    DilocoLoop(InnerTrainer& inner, IslandComms& comms, const DilocoConfig& config);
    // Averages the gradients over the island's ranks where they lie (NCCL on GPUs), in place of
    // the host copy and the island's MPI communicator.
    void set_island_average(GradReducer average) { island_average_ = std::move(average); }

    StepResult inner_step();
    bool outer_due() const;
    OuterReport outer_step();
    int outer_steps_taken() const { return outer_steps_; }

    // Validation loss of the model this rank holds, the batches split over `comm`'s ranks.
    double evaluate(Comm& comm, int max_batches);

    // Traffic of this rank across islands so far (ddp: every step; diloco: outer steps).
    const SyncStats& traffic() const { return traffic_; }

    // Checkpoints at outer-step boundaries: dir/ holds the global model and the outer state,
    // dir/island-I/ each island's AdamW state and data position (written by its leader).
    void save(const std::string& dir);
    // Restores a checkpoint saved with any number of islands: islands that existed keep their
    // state, new ones start from the global parameters with fresh moments and data.
    void resume(const std::string& dir);

private:
    void reduce_gradients(void* grads, size_t n);
    IslandComms& comms_;
    InnerTrainer& inner_;
    DilocoConfig config_;
    OuterSync sync_;
    OuterOptimizer outer_;
    GradReducer island_average_;
    std::vector<float> global_;
    int outer_steps_ = 0;
    double round_loss_ = 0;
    int round_steps_ = 0;
    SyncStats traffic_;
    std::map<int, uint64_t> known_positions_;  // data positions of every island ever saved
};

}  // namespace diloco
