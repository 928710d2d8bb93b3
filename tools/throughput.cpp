// Tokens/s, MFU and peak memory of training steps, and the peak rate MFU is measured against:
// a user's figure, the GPU table, or the CPU's matmul rate measured at start.
#include "tools/throughput.h"

#include <cstdio>

#include "kernels/peak.h"

namespace diloco {

namespace {
constexpr int kProbe = 512;  // CPU probe: square products big enough for the BLAS's full rate
// The best of many (about 30 ms idle): on a busy machine a few products can all be descheduled
// and leave a peak far below the machine's, and an MFU above 100%.
constexpr int kProbeReps = 30;
}

PeakRate peak_rate(Backend& backend, bool gpu, double peak_tflops) {
    if (peak_tflops > 0) return {peak_tflops * 1e12, "--peak-tflops"};
    const std::string device = backend.device_name();
    if (gpu) {
        const double flops = gpu_bf16_peak_flops(device);
        if (flops > 0) return {flops, device + ", dense bf16 (data sheet)"};
        return {0, "unknown GPU '" + device + "': no peak rate known, give --peak-tflops"};
    }
    const double flops = measure_matmul_flops(backend, kProbe, kProbe, kProbe, kProbeReps);
    return {flops, device + ", fp32 matmul " + std::to_string(kProbe) + "^3 measured at start"};
}

std::string Throughput::add(nlohmann::json& record, double step_ms) const {
    const double seconds = step_ms / 1000.0;
    const double tokens_per_s = all_tokens_ / seconds;
    record["tokens_per_s"] = tokens_per_s;
    record["peak_mem_bytes"] = backend_.peak_memory_bytes();
    char line[64];
    std::snprintf(line, sizeof line, "%.0f tok/s", tokens_per_s);
    if (peak_.flops <= 0) return line;
    const double mfu = rank_tokens_ * flops_per_token_ / seconds / peak_.flops;
    record["mfu"] = mfu;
    std::snprintf(line, sizeof line, "%.0f tok/s | MFU %.1f%%", tokens_per_s, 100 * mfu);
    return line;
}

nlohmann::json Throughput::info() const {
    return {{"flops_per_token", flops_per_token_},
            {"peak_flops", peak_.flops},
            {"peak_source", peak_.source}};
}

std::string Throughput::describe() const {
    char line[96];
    std::snprintf(line, sizeof line, "%.4g model FLOPs per token (6N + 6LTC), peak ",
                  flops_per_token_);
    if (peak_.flops <= 0) return line + peak_.source;
    char rate[32];
    std::snprintf(rate, sizeof rate, "%.4g TFLOP/s", peak_.flops / 1e12);
    return line + std::string(rate) + " (" + peak_.source + ")";
}

}  // namespace diloco
