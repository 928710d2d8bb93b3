// Training FLOPs per token by llm.c's count: six per parameter and 6 L T C for attention.
// The count is an estimate by convention, so that MFU figures compare across trainers.
#include "model/flops.h"

#include "model/layout.h"

namespace diloco {

double training_flops_per_token(const GptConfig& config, int seq) {
    const double params = static_cast<double>(build_layout(config).total);
    return 6.0 * params + 6.0 * config.layers * static_cast<double>(seq) * config.channels;
}

}  // namespace diloco
