// Learning-rate schedule: linear warm-up, then cosine decay to a floor.
// Evaluated in double and rounded once, so the value does not depend on float evaluation order.
#include "optim/schedule.h"

#include <algorithm>
#include <cmath>

namespace diloco {

float LrSchedule::at(int step) const {
    if (step < warmup_steps) return static_cast<float>(double(max_lr) * (step + 1) / warmup_steps);
    const double min_lr = double(max_lr) * min_lr_fraction;
    const int decay_steps = std::max(1, total_steps - warmup_steps);
    const double ratio = std::min(1.0, double(step - warmup_steps) / decay_steps);
    const double coeff = 0.5 * (1.0 + std::cos(M_PI * ratio));
    return static_cast<float>(min_lr + coeff * (double(max_lr) - min_lr));
}

}  // namespace diloco
