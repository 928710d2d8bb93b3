// Learning-rate schedule: linear warm-up, then cosine decay to a floor (llm.c and the DiLoCo
// paper's inner schedule), as a pure function of the step so a resumed run needs no state.
#pragma once

namespace diloco {

struct LrSchedule {
    float max_lr = 1e-3f;
    int warmup_steps = 100;
    int total_steps = 1000;
    float min_lr_fraction = 0.1f;  // the floor, as a fraction of max_lr

    // Learning rate for 0-based step: (step+1)/warmup * max_lr during warm-up, then cosine from
    // max_lr at the end of warm-up to the floor at total_steps (and the floor after).
    float at(int step) const;
};

}  // namespace diloco
