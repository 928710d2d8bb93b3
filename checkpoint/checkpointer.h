// A run's checkpoints and their policy: which steps are saved (--save-every and the last step),
// the save directory made only at the first save, every rank's part written in the background,
// a diverged model refused, and an interrupted island's progress kept beside its last save.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "checkpoint/writer.h"
#include "comm/topology.h"
#include "optim/diloco.h"

namespace diloco {

struct SavePolicy {
    std::string dir;    // the checkpoint link; empty: no checkpoints
    int every = 0;      // also save every N steps (0: only at the last step)
    int keep = 3;       // saves kept in DIR.steps, the newest (0: all)
    int last_step = 0;  // the step the run stops after, always saved

    bool due(int step) const;
};

class Checkpointer {
public:
    // Collective. extra: files world rank 0 adds to every save (the tokenizer).
    Checkpointer(const SavePolicy& policy, DilocoLoop& loop, const IslandComms& comms,
                 std::function<void(const std::string& dir)> extra);

    bool due(int step) const { return policy_.due(step); }
    // Collective: saves the loop's state at `step` in the background (the last step's is waited
    // for). val_loss: the step's validation loss, if it was evaluated: a non-finite one stops
    // the run on every rank, and the last checkpoint stays published.
    void save(int step, std::optional<double> val_loss);
    // After training was interrupted (a peer island lost, a stop signal) at `step`: the island's
    // leader keeps what the island trained since the last outer step beside that step's save,
    // so that a restart goes on from it.
    void keep_progress(int step);

private:
    std::function<void(const std::string& dir)> files();

    SavePolicy policy_;
    DilocoLoop& loop_;
    const IslandComms& comms_;
    std::function<void(const std::string& dir)> extra_;
    std::unique_ptr<CheckpointWriter> writer_;
    bool prepared_ = false;  // DIR.steps made ready, at the first save
};

}  // namespace diloco
