// A run's checkpoints: the save policy, the writer built with a number every rank of the run
// shares, the refusal of a diverged model, and an interrupted island's progress.
#include "checkpoint/checkpointer.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <random>
#include <utility>

#include "util/error.h"
#include "util/stop_signal.h"

namespace diloco {

namespace {

// Collective. The marks that tell rank 0 a rank's part is written carry a number drawn for this
// run, which a crashed run's marks do not.
std::unique_ptr<CheckpointWriter> make_writer(const SavePolicy& policy, const IslandComms& comms) {
    if (policy.dir.empty()) return nullptr;
    uint64_t run = (uint64_t(std::random_device{}()) << 32) ^ std::random_device{}();
    comms.world->broadcast(&run, sizeof run, 0);
    constexpr double kSaveTimeout = 600;  // seconds for the other ranks' parts of a save
    return std::make_unique<CheckpointWriter>(policy.dir, comms.topology.world_rank,
                                              comms.topology.world_size, policy.keep,
                                              kSaveTimeout, run);
}

}  // namespace

bool SavePolicy::due(int step) const {
    return !dir.empty() && (step == last_step || (every > 0 && step % every == 0));
}

Checkpointer::Checkpointer(const SavePolicy& policy, DilocoLoop& loop, const IslandComms& comms,
                           std::function<void(const std::string&)> extra)
    : policy_(policy), loop_(loop), comms_(comms), extra_(std::move(extra)),
      writer_(make_writer(policy, comms)) {}

// What this rank writes of a checkpoint, copied now (world rank 0: with the extra files).
std::function<void(const std::string&)> Checkpointer::files() {
    auto files = loop_.snapshot();
    if (comms_.topology.world_rank != 0 || !extra_) return files;
    return [files, extra = extra_](const std::string& dir) {
        files(dir);
        extra(dir);
    };
}

// A model that diverged is never published: the last checkpoint stays where it was. Every rank
// holds the same validation loss, so all refuse. (Weights may stay finite while the loss is
// not; a non-finite weight is refused by the safetensors writer itself.)
void Checkpointer::save(int step, std::optional<double> val_loss) {
    if (!writer_) return;
    if (val_loss && !std::isfinite(*val_loss))
        throw Error("step " + std::to_string(step) + ": validation loss " +
                    std::to_string(*val_loss) + ": not saved, the last checkpoint stays published");
    if (!prepared_) {  // a run that never saves leaves nothing on disk
        if (comms_.topology.world_rank == 0) prepare_checkpoint_root(policy_.dir);
        comms_.world->barrier();  // no rank writes its part before the unfinished saves are gone
        prepared_ = true;
    }
    writer_->save(step, files());
    if (step == policy_.last_step) writer_->wait();  // the run ends with its checkpoint in place
}

void Checkpointer::keep_progress(int step) {
    if (!writer_) return;
    writer_->give_up_after(1);  // a peer that is gone never writes its part of a save
    if (!loop_.has_progress()) return;
    const int island = comms_.topology.island_id(), base_step = loop_.last_outer_step();
    const std::string base = writer_->step_dir(base_step);
    const std::string what = "island " + std::to_string(island) + "'s progress from step " +
                             std::to_string(base_step) + " to " + std::to_string(step);
    if (!std::filesystem::is_directory(base)) {
        std::fprintf(stderr, "diloco: %s is not kept: step %d was not saved (--save-every)\n",
                     what.c_str(), base_step);
        return;
    }
    KeepingProgress saving;  // a stop signal's grace waits for it
    try {
        diloco::keep_progress(base, island, step,
                              [&](const std::string& dir) { loop_.write_progress(dir); });
        std::fprintf(stderr, "diloco: %s is kept in %s\n", what.c_str(),
                     progress_dir(base, island, step).c_str());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "diloco: %s could not be kept: %s\n", what.c_str(), e.what());
    }
}

}  // namespace diloco
