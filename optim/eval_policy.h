// When a run evaluates its model: every N steps (DiLoCo: at the end of the round of H steps that
// reaches or follows each multiple, where the global model is whole), and always at the end.
#pragma once

#include "optim/diloco.h"

namespace diloco {

struct EvalPolicy {
    int every = 0;        // --eval-every (0 or less: only at the last step)
    int last_step = 0;    // the step the run stops after
    Mode mode = Mode::diloco;
    int inner_steps = 1;  // H

    // step: the inner step just done; round_end: its round of H steps has closed.
    bool due(int step, bool round_end) const;
};

}  // namespace diloco
