// The evaluation policy: diloco evaluates its global model after a round's outer step, the
// baselines at the step itself.
#include "optim/eval_policy.h"

namespace diloco {

// Every round when --eval-every <= H.
bool EvalPolicy::due(int step, bool round_end) const {
    if (step == last_step) return true;
    if (every <= 0) return false;
    if (mode != Mode::diloco) return step % every == 0;
    return round_end && step % every < inner_steps;
}

}  // namespace diloco
