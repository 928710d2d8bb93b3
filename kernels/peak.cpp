// The GPU peak-rate table and the matmul rate measurement behind MFU figures. Table figures are
// NVIDIA's data-sheet dense bf16 rates (half the "with sparsity" ones), fp32 accumulation.
#include "kernels/peak.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <vector>

#include "util/rng.h"

namespace diloco {

namespace {

struct KnownGpu {
    const char* name;  // a word (or words) of the CUDA device name
    double tflops;
};

// Most specific first: "GH200" before "H200", "H100 PCIe" before the SXM names.
constexpr KnownGpu kKnownGpus[] = {
    {"B200", 2250.0},     {"GH200", 989.4},     {"H200 NVL", 835.5},  {"H200", 989.4},
    {"H100 NVL", 835.5},  {"H100 PCIe", 756.5}, {"H100 SXM", 989.4},  {"H100 80GB HBM3", 989.4},
    {"A100", 312.0},      {"L40S", 362.05},     {"L40", 181.05},      {"L4", 121.0},
    {"A10", 125.0},       {"RTX 4090", 165.2},  {"RTX 3090", 71.0},
};

bool word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

// `words` occurs in `name` with no letter or digit glued to either end ("L4" is not in "L40S").
bool has_words(const std::string& name, const std::string& words) {
    for (size_t at = name.find(words); at != std::string::npos; at = name.find(words, at + 1)) {
        const size_t end = at + words.size();
        if ((at == 0 || !word_char(name[at - 1])) && (end == name.size() || !word_char(name[end])))
            return true;
    }
    return false;
}

}  // namespace

double gpu_bf16_peak_flops(const std::string& device_name) {
    for (const KnownGpu& gpu : kKnownGpus)
        if (has_words(device_name, gpu.name)) return gpu.tflops * 1e12;
    return 0.0;
}

double measure_matmul_flops(Backend& backend, int N, int C, int OC, int reps) {
    std::vector<float> host(static_cast<size_t>(std::max(N, OC)) * C);
    Rng rng(1, 1);
    for (float& x : host) x = rng.uniform() - 0.5f;
    const size_t sb = backend.storage_bytes();
    DeviceBuffer inp(backend, size_t(N) * C * sb), w(backend, size_t(OC) * C * sb),
        b(backend, size_t(OC) * sb), out(backend, size_t(N) * OC * sb);
    backend.upload(inp.get(), host.data(), size_t(N) * C);
    backend.upload(w.get(), host.data(), size_t(OC) * C);
    double best = 0;
    for (int rep = 0; rep <= reps; rep++) {
        auto start = std::chrono::steady_clock::now();
        backend.matmul_forward(out.get(), nullptr, inp.get(), w.get(), b.get(), N, C, OC);
        backend.synchronize();
        const double s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (rep > 0) best = std::max(best, 2.0 * N * C * OC / s);
    }
    return best;
}

}  // namespace diloco
