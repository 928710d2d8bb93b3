// CPU bench: the BLAS matmul rate at the tiny preset's shapes and at 1024^3, and the tiny
// preset's training throughput, printed as tokens/s and as a fraction of the matmul rate.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "data/byte_corpus.h"
#include "kernels/backend.h"
#include "model/layout.h"
#include "optim/inner.h"
#include "util/rng.h"

using namespace diloco;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Median GFLOP/s of matmul_forward for out[N,OC] = inp[N,C] W^T + b.
double matmul_gflops(Backend& backend, int N, int C, int OC) {
    std::vector<float> host(static_cast<size_t>(std::max(N, OC)) * C);
    Rng rng(1, 1);
    for (float& x : host) x = rng.uniform() - 0.5f;
    DeviceBuffer inp(backend, size_t(N) * C * 4), w(backend, size_t(OC) * C * 4),
        b(backend, size_t(OC) * 4), out(backend, size_t(N) * OC * 4);
    backend.upload(inp.get(), host.data(), size_t(N) * C);
    backend.upload(w.get(), host.data(), size_t(OC) * C);
    std::vector<double> rates;
    for (int rep = 0; rep < 7; rep++) {
        auto start = std::chrono::steady_clock::now();
        backend.matmul_forward(out.get(), nullptr, inp.get(), w.get(), b.get(), N, C, OC);
        rates.push_back(2.0 * N * C * OC / seconds_since(start) / 1e9);
    }
    std::sort(rates.begin(), rates.end());
    return rates[rates.size() / 2];
}

}  // namespace

int main() {
    auto backend = make_cpu_backend();
    std::printf("%-34s %12s\n", "matmul (N x C -> OC)", "GFLOP/s");
    const int shapes[][3] = {{2048, 128, 384}, {2048, 128, 512}, {2048, 512, 128},
                             {2048, 128, 256}, {1024, 1024, 1024}};
    double peak = 0;
    for (const auto& s : shapes) {
        double g = matmul_gflops(*backend, s[0], s[1], s[2]);
        peak = std::max(peak, g);
        std::printf("%5d x %5d -> %5d %27.1f\n", s[0], s[1], s[2], g);
    }

    const int B = 16, T = 128, steps = 8;
    std::string text;
    Rng rng(2, 2);
    while (text.size() < 200000) text += static_cast<char>('a' + rng.below(26));
    std::string path = "/tmp/diloco_bench_cpu.txt";
    std::FILE* f = std::fopen(path.c_str(), "wb");
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
    ByteCorpus data = ByteCorpus::from_file(path, 0.1, T);
    GptConfig model = preset_config("tiny", 256);
    InnerConfig config;
    config.batch = B, config.seq = T;
    InnerTrainer trainer(*backend, model, data, config);
    trainer.init_params();
    trainer.step();  // warm-up: first touches of every buffer
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < steps; i++) trainer.step();
    double tokens_per_s = double(B) * T * steps / seconds_since(start);
    // Training FLOPs per token as in llm.c / PaLM: 6N for the weights, 6LCT for attention.
    double flops_per_token = 6.0 * build_layout(model).total +
                             6.0 * model.layers * model.channels * T;
    double achieved = tokens_per_s * flops_per_token / 1e9;
    std::printf("\ntiny preset training (B=%d, T=%d, %zu params): %.0f tokens/s, %.1f GFLOP/s = "
                "%.0f%% of the best matmul rate above (%.1f GFLOP/s)\n",
                B, T, build_layout(model).total, tokens_per_s, achieved, 100 * achieved / peak,
                peak);
    std::remove(path.c_str());
    return 0;
}
