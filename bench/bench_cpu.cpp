// CPU bench: the matmul rate at a few shapes, and training tokens/s of the tiny preset and of a
// 6-layer 384-wide GPT-2-vocabulary model on 1 and 2 threads, alternating with PyTorch's runs.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "bench/peer.h"
#include "data/train_data.h"
#include "kernels/backend.h"
#include "kernels/peak.h"
#include "model/layout.h"
#include "optim/inner.h"
#include "util/rng.h"

using namespace diloco;
using namespace diloco::bench;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Uniform random tokens of any vocabulary: the speed of a step does not depend on the text.
class RandomTokens : public TrainData {
public:
    explicit RandomTokens(int vocab) : vocab_(vocab) {}
    std::string source() const override { return "random tokens"; }
    int vocab() const override { return vocab_; }
    int eot() const override { return vocab_ - 1; }
    std::string describe() const override { return source(); }
    TokenBatch train_batch(uint64_t seed, uint64_t index, int B, int T,
                           int /*first_row*/) const override {
        TokenBatch batch(B, T);
        Rng rng(seed, index);
        for (size_t i = 0; i < batch.inputs.size(); i++) {
            batch.inputs[i] = static_cast<int32_t>(rng.below(vocab_));
            batch.targets[i] = static_cast<int32_t>(rng.below(vocab_));
        }
        return batch;
    }
    std::vector<TokenBatch> val_batches(int, int, int) const override { return {}; }

private:
    int vocab_;
};

struct Shape {
    const char* name;
    GptConfig model;
    int batch, seq, steps;
};

// Our tokens/s over `steps` steps after one warm-up step, on `threads` threads.
double ours_tokens_per_s(Backend& backend, const Shape& shape, int threads) {
    omp_set_num_threads(threads);
    RandomTokens data(shape.model.vocab);
    InnerConfig config;
    config.batch = shape.batch, config.seq = shape.seq;
    InnerTrainer trainer(backend, shape.model, data, config);
    trainer.init_params();
    trainer.step();
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < shape.steps; i++) trainer.step();
    return double(shape.batch) * shape.seq * shape.steps / seconds_since(start);
}

// PyTorch's tokens/s on the same shape, batch, optimizer and threads (bench/torch_peer.py).
double torch_tokens_per_s(const std::string& python, const Shape& shape, int threads,
                          std::string& version) {
    const GptConfig& m = shape.model;
    std::string args;
    for (int v : {m.layers, m.heads, m.channels, m.vocab, shape.seq, shape.batch, threads,
                  shape.steps})
        args += std::to_string(v) + " ";
    std::string answer = run_peer_script(python, "torch_peer.py", args);
    char name[64] = {};
    double tokens_per_s = 0;
    require(std::sscanf(answer.c_str(), "%63s %lf", name, &tokens_per_s) == 2,
            "torch_peer.py: unexpected answer '" + answer + "'");
    version = name;
    return tokens_per_s;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

}  // namespace

// bench_cpu [ROUNDS]: each round runs ours then PyTorch for every shape and thread count.
int main(int argc, char** argv) try {
    const int rounds = argc > 1 ? std::max(1, std::atoi(argv[1])) : 3;
    auto backend = make_cpu_backend();
    // The trainer's probe for its CPU peak (MFU): the best of 6 timed products after a warm-up.
    std::printf("%-34s %12s\n", "matmul (N x C -> OC), all threads", "GFLOP/s");
    const int shapes[][3] = {{2048, 128, 512}, {2048, 512, 128}, {1024, 384, 1536},
                             {1024, 384, 50304}, {1024, 1024, 1024}};
    for (const auto& s : shapes)
        std::printf("%5d x %5d -> %5d %27.1f\n", s[0], s[1], s[2],
                    measure_matmul_flops(*backend, s[0], s[1], s[2], 6) / 1e9);

    GptConfig wide = preset_config("tiny", 50257);
    wide.layers = 6, wide.heads = 6, wide.channels = 384, wide.max_seq = 256;
    const Shape train_shapes[] = {{"tiny preset, bytes", preset_config("tiny", 256), 16, 128, 8},
                                  {"6L/384/6H, GPT-2 vocab", wide, 4, 256, 3}};
    const int thread_counts[] = {1, 2};
    const std::string python = peers_python();
    std::string version = "not run";
    // [shape][threads][round]
    std::vector<double> ours[2][2], peer[2][2];
    for (int r = 0; r < rounds; r++)
        for (int s = 0; s < 2; s++)
            for (int t = 0; t < 2; t++) {
                ours[s][t].push_back(
                    ours_tokens_per_s(*backend, train_shapes[s], thread_counts[t]));
                if (!python.empty())
                    peer[s][t].push_back(torch_tokens_per_s(python, train_shapes[s],
                                                            thread_counts[t], version));
            }

    std::printf("\ntraining tokens/s, fp32, AdamW, median of %d alternating rounds; PyTorch %s\n",
                rounds, version.c_str());
    if (python.empty())
        std::printf("peer (PyTorch) NOT run: no peers' python (scripts/peers.sh makes it, or set "
                    "DILOCO_PEERS_PYTHON)\n");
    std::printf("%-24s %7s %10s %10s %8s\n", "shape (B x T)", "threads", "ours", "pytorch",
                "ratio");
    for (int s = 0; s < 2; s++) {
        const Shape& sh = train_shapes[s];
        for (int t = 0; t < 2; t++) {
            double o = median(ours[s][t]);
            std::printf("%-24s %7d %10.0f", sh.name, thread_counts[t], o);
            if (python.empty()) {
                std::printf("\n");
                continue;
            }
            double p = median(peer[s][t]);
            std::printf(" %10.0f %7.2fx\n", p, o / p);
        }
        std::printf("%-24s 2 vs 1 threads: ours %.2fx", "",
                    median(ours[s][1]) / median(ours[s][0]));
        if (!python.empty())
            std::printf(", pytorch %.2fx", median(peer[s][1]) / median(peer[s][0]));
        std::printf("  (B=%d, T=%d, %zu params)\n", sh.batch, sh.seq,
                    build_layout(sh.model).total);
    }
    return 0;
} catch (const Error& e) {
    std::fprintf(stderr, "bench_cpu: error: %s\n", e.what());
    return 1;
}
