// The flat parameter layout: every GPT tensor as a named slice (GPT-2 / Hugging Face names) of
// one contiguous buffer, laid out layer by layer so a group of layers is one contiguous range.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"

namespace diloco {

struct ParamTensor {
    std::string name;            // e.g. "h.3.attn.c_attn.weight"
    std::vector<int64_t> shape;  // our shape: matmul weights are [out, in]
    size_t offset;               // in elements, into the flat buffer
    size_t size;                 // elements
    bool decay;                  // AdamW weight decay applies (matrices and embeddings only)
    bool residual_projection;    // scaled at init by 1/sqrt(2 * layers)
    bool is_matmul_weight;       // stored transposed ([in, out]) in Hugging Face's Conv1D layout
};

// Offsets of one transformer block's tensors, in elements from the start of the flat buffer.
struct BlockOffsets {
    size_t ln1_w, ln1_b, qkv_w, qkv_b, attproj_w, attproj_b;
    size_t ln2_w, ln2_b, fc_w, fc_b, fcproj_w, fcproj_b;
};

struct ParamLayout {
    std::vector<ParamTensor> tensors;
    size_t total = 0;
    size_t wte = 0, wpe = 0, lnf_w = 0, lnf_b = 0;
    std::vector<BlockOffsets> blocks;

    const ParamTensor& find(const std::string& name) const;
};

ParamLayout build_layout(const GptConfig& config);

}  // namespace diloco
