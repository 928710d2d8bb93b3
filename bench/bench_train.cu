// bench_train: whole training steps of a preset (gpt2-124m at T = 1,024 by default) on one GPU,
// through InnerTrainer::step as `diloco train` takes them; per attention path and batch size.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/peak.h"
#include "model/config.h"
#include "model/flops.h"
#include "optim/inner.h"
#include "util/rng.h"

using namespace diloco;

namespace {

constexpr int kVocab = 50257;  // GPT-2's

// Uniform random tokens: the step does the same work on any tokens, and the bench needs no files.
class RandomTokens final : public TrainData {
public:
    explicit RandomTokens(int vocab) : vocab_(vocab) {}
    std::string source() const override { return "random tokens"; }
    int vocab() const override { return vocab_; }
    int eot() const override { return vocab_ - 1; }  // GPT-2's <|endoftext|>
    std::string describe() const override { return "uniform random tokens"; }
    TokenBatch train_batch(uint64_t seed, uint64_t index, int B, int T,
                           int first_row) const override {
        TokenBatch batch(B, T);
        for (int b = 0; b < B; b++) {
            Rng rng(seed, index * 1000003u + first_row + b);
            int32_t token = static_cast<int32_t>(rng.below(vocab_));
            for (size_t i = size_t(b) * T; i < size_t(b + 1) * T; i++) {
                batch.inputs[i] = token;
                batch.targets[i] = token = static_cast<int32_t>(rng.below(vocab_));
            }
        }
        return batch;
    }
    std::vector<TokenBatch> val_batches(int, int, int) const override { return {}; }

private:
    int vocab_;
};

struct Args {
    std::string preset = "gpt2-124m";
    int seq = 1024, steps = 10, warmup = 2;
    std::vector<std::string> batches{"16", "max"};
    std::vector<std::string> attention{"all"};
    bool bf16 = true;
};

std::vector<std::string> split(const std::string& list) {
    std::vector<std::string> items;
    std::stringstream in(list);
    for (std::string item; std::getline(in, item, ',');) items.push_back(item);
    return items;
}

constexpr const char* kUsage =
    "usage: bench_train [--preset NAME] [--seq T] [--batch LIST] [--attention LIST] [--steps N]\n"
    "                   [--warmup N] [--fp32]\n"
    "  --batch: comma-separated sizes, 'max' for the largest that fits (default 16,max)\n"
    "  --attention: comma-separated paths (cudnn, flash, plain), 'all' for every path of\n"
    "               this build (default), 'best' for the first of them";

// The attention paths this build runs in this storage type, the fastest first (cuDNN's in
// bf16 only).
std::vector<std::string> all_paths(bool bf16) {
    std::vector<std::string> paths{"flash", "plain"};
    if (bf16 && cuda_has_cudnn_attention()) paths.insert(paths.begin(), "cudnn");
    return paths;
}

AttentionPath path_of(const std::string& name) {
    return name == "cudnn" ? AttentionPath::cudnn
           : name == "flash" ? AttentionPath::flash
                             : AttentionPath::plain;
}

int positive(const std::string& flag, const std::string& value) {
    int v = 0;
    size_t used = 0;
    try {
        v = std::stoi(value, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    require(used == value.size() && v > 0, flag + " '" + value + "': expected a positive integer");
    return v;
}

Args parse(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; i++) {
        const std::string s = argv[i];
        auto value = [&]() -> std::string {
            require(i + 1 < argc, s + " needs a value");
            return argv[++i];
        };
        if (s == "--preset")
            a.preset = value();
        else if (s == "--seq")
            a.seq = positive(s, value());
        else if (s == "--steps")
            a.steps = positive(s, value());
        else if (s == "--warmup")
            a.warmup = positive(s, value());
        else if (s == "--batch")
            a.batches = split(value());
        else if (s == "--attention")
            a.attention = split(value());
        else if (s == "--fp32")
            a.bf16 = false;
        else
            throw Error("unknown argument '" + s + "'\n" + kUsage);
    }
    for (const std::string& b : a.batches)
        if (b != "max") positive("--batch", b);
    require(!a.batches.empty() && !a.attention.empty(), "--batch and --attention need a value");
    const std::vector<std::string> available = all_paths(a.bf16);
    std::vector<std::string> paths;
    for (const std::string& path : a.attention) {
        const bool known = path == "cudnn" || path == "flash" || path == "plain";
        require(known || path == "all" || path == "best",
                "--attention '" + path + "': expected cudnn, flash, plain, all or best");
        require(!known || std::find(available.begin(), available.end(), path) != available.end(),
                "--attention " + path + ": not in this build" + (a.bf16 ? "" : " in fp32"));
        if (path == "all")
            paths.insert(paths.end(), available.begin(), available.end());
        else
            paths.push_back(path == "best" ? available.front() : path);
    }
    a.attention = paths;
    const GptConfig model = preset_config(a.preset, kVocab);
    require(a.seq <= model.max_seq,
            "--seq " + std::to_string(a.seq) + " is longer than " + a.preset + "'s context");
    return a;
}

bool out_of_memory(const Error& e) {
    return std::string(e.what()).find("out of memory") != std::string::npos;
}

double device_memory_gib() {
    size_t free = 0, total = 0;
    CUDA_CHECK(cudaMemGetInfo(&free, &total));
    return static_cast<double>(total - free) / (1u << 30);
}

struct Timing {
    int batch;
    double ms, first_loss, last_loss, memory_gib;
};

class TrainBench {
public:
    TrainBench(const Args& args, const std::string& attention)
        : args_(args), attention_(attention), data_(kVocab),
          model_(preset_config(args.preset, kVocab)) {
        CudaOptions options;
        options.bf16 = args.bf16;
        options.attention = path_of(attention);
        backend_ = make_cuda_backend(options);
    }

    // Warm-up steps, then the mean of timed steps; each step ends synchronised (its gradient
    // norm comes back to the host for clipping), so the sum of step times is the wall time.
    Timing time(int batch) {
        InnerTrainer trainer = make_trainer(batch, true);
        Timing t{batch, 0.0, 0.0, 0.0, 0.0};
        for (int i = 0; i < args_.warmup; i++) {
            const StepResult r = trainer.step();
            if (i == 0) t.first_loss = r.loss;
        }
        for (int i = 0; i < args_.steps; i++) {
            const StepResult r = trainer.step();
            t.ms += r.ms / args_.steps;
            t.last_loss = r.loss;
        }
        t.memory_gib = device_memory_gib();
        return t;
    }

    // Doubles the batch from 16 until a step runs out of memory, then bisects to a multiple of
    // 16. Any error other than running out of memory is a failure, not a size limit.
    int largest_batch() {
        int fits = 0, fails = 0;
        for (int b = 16; fails == 0; b *= 2) {
            (try_step(b) ? fits : fails) = b;
            require(fits > 0, "not even a batch of 16 fits on this GPU");
        }
        while (fails - fits > 16) {
            const int mid = (fits + fails) / 32 * 16;
            (try_step(mid) ? fits : fails) = mid;
        }
        return fits;
    }

    // largest: the batch is the largest that fits.
    void report(const Timing& t, bool largest) const {
        const double tokens_per_s = double(t.batch) * args_.seq / (t.ms * 1e-3);
        std::printf("bench_train preset=%s %s attention=%s B=%d T=%d ms_per_step=%.2f "
                    "tokens_per_s=%.0f mfu=%s mem_gib=%.1f loss=%.4f->%.4f%s\n",
                    args_.preset.c_str(), args_.bf16 ? "bf16" : "fp32", attention_.c_str(), t.batch,
                    args_.seq, t.ms, tokens_per_s, mfu(tokens_per_s).c_str(), t.memory_gib,
                    t.first_loss, t.last_loss, largest ? " largest" : "");
        std::fflush(stdout);
    }
    // The trainer's MFU (llm.c's 6N + 6LTC per token against the GPU's dense bf16 peak), "-"
    // in fp32 or on a GPU the peak table does not know.
    std::string mfu(double tokens_per_s) const {
        const double peak = gpu_bf16_peak_flops(backend_->device_name());
        if (!args_.bf16 || peak <= 0) return "-";
        char text[16];
        std::snprintf(text, sizeof text, "%.1f%%",
                      100 * tokens_per_s * training_flops_per_token(model_, args_.seq) / peak);
        return text;
    }
    void report_out_of_memory(int batch) const {
        std::printf("bench_train preset=%s %s attention=%s B=%d T=%d out_of_memory\n",
                    args_.preset.c_str(), args_.bf16 ? "bf16" : "fp32", attention_.c_str(), batch,
                    args_.seq);
        std::fflush(stdout);
    }

private:
    // Zero weights unless initialised: the same work and memory, without the host-side init.
    InnerTrainer make_trainer(int batch, bool init) {
        InnerConfig c;
        c.batch = batch;
        c.seq = args_.seq;
        c.schedule = {6e-4f, 0, args_.warmup + args_.steps, 0.1f};
        InnerTrainer trainer(*backend_, model_, data_, c);
        if (init) trainer.init_params();
        return trainer;
    }
    bool try_step(int batch) {
        try {
            make_trainer(batch, false).step();
            return true;
        } catch (const Error& e) {
            if (!out_of_memory(e)) throw;
            return false;
        }
    }

    const Args& args_;
    std::string attention_;
    RandomTokens data_;
    GptConfig model_;
    std::unique_ptr<Backend> backend_;
};

void run(const Args& args) {
    for (const std::string& attention : args.attention) {
        TrainBench bench(args, attention);
        for (const std::string& b : args.batches) {
            const int batch = b == "max" ? bench.largest_batch() : std::stoi(b);
            try {
                bench.report(bench.time(batch), b == "max");
            } catch (const Error& e) {
                if (!out_of_memory(e)) throw;
                bench.report_out_of_memory(batch);
            }
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const Args args = parse(argc, argv);
        if (cuda_device_count() == 0) {
            std::printf("SKIPPED: no CUDA device\n");
            return 77;
        }
        run(args);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_train: %s\n", e.what());
        return 1;
    }
    return 0;
}
