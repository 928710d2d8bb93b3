// Model FLOPs of training, counted as llm.c counts them, for throughput and MFU figures: what
// the model needs per token, whatever the kernels do (recomputation and padding not counted).
#pragma once

#include "model/config.h"

namespace diloco {

// 6 N + 6 L T C per token (Kaplan et al. 2020, section 2.1, forward and backward): 6 N for the
// products with the weights, where N is every parameter as stored (the tied token embedding
// once, its padded rows, the whole position table, biases and LayerNorms), and 6 L T C for
// attention's scores and weighted values over a context of T = seq tokens, masking ignored.
double training_flops_per_token(const GptConfig& config, int seq);

}  // namespace diloco
