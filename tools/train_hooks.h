// The hooks `diloco train` gives the loop: each step goes to the report (lines and metrics),
// then the evaluation policy and the checkpointer decide whether to evaluate and to save.
#pragma once

#include "checkpoint/checkpointer.h"
#include "optim/eval_policy.h"
#include "tools/train_report.h"
#include "tools/train_run.h"

namespace diloco {

// Collective: its constructor and every callback run on all ranks.
class TrainHooks : public LoopObserver {
public:
    TrainHooks(Run& run, const TrainOptions& o);

    void inner_step(const StepResult& r) override { report_.inner_step(r); }
    void outer_step(const OuterReport& rep) override { report_.outer_step(rep); }
    void step_done(int step, bool round_end) override;
    // The last record: the run went to its last step.
    void end(int step) { report_.end(step); }
    // After training was interrupted: the island keeps its progress (checkpoint/checkpointer.h).
    void keep_progress();

private:
    Run& run_;
    const int val_batches_;
    TrainReport report_;
    const EvalPolicy eval_;
    Checkpointer checkpoints_;
};

}  // namespace diloco
