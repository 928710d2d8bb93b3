// A training run's speed for its step lines and metrics: tokens/s, model FLOPs utilisation
// (llm.c's count against the device's peak rate) and the backend's peak memory.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>

#include "kernels/backend.h"

namespace diloco {

struct PeakRate {
    double flops = 0;    // FLOP/s; 0: unknown, no MFU
    std::string source;  // where the figure comes from, or why there is none
};

// peak_tflops > 0 (the user's figure) wins; else a GPU's dense bf16 rate from the table by its
// device name, or the CPU's matmul rate measured now (512^3 products, the best of 30).
PeakRate peak_rate(Backend& backend, bool gpu, double peak_tflops);

class Throughput {
public:
    // rank_tokens: this rank's tokens per step (its MFU); all_tokens: every rank's (tokens/s).
    Throughput(Backend& backend, PeakRate peak, double flops_per_token, size_t rank_tokens,
               size_t all_tokens)
        : backend_(backend), peak_(std::move(peak)), flops_per_token_(flops_per_token),
          rank_tokens_(rank_tokens), all_tokens_(all_tokens) {}

    // Adds tokens_per_s, mfu (where the peak is known) and peak_mem_bytes to a step's record;
    // returns the step line's part, "12345 tok/s | MFU 12.3%".
    std::string add(nlohmann::json& record, double step_ms) const;
    // flops_per_token, peak_flops and peak_source, for evaluation records.
    nlohmann::json info() const;
    // One line for the run's header.
    std::string describe() const;
    size_t tokens_per_step() const { return all_tokens_; }

private:
    Backend& backend_;
    PeakRate peak_;
    double flops_per_token_;
    size_t rank_tokens_, all_tokens_;
};

}  // namespace diloco
