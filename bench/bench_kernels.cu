// bench_kernels: every CUDA op at GPT-2 124M shapes, timed with CUDA events (warm-up, median of
// many reps, L2 flushed before each), printed with its rate and its fraction of the ceiling that
// this run measures first: a device-to-device copy, and a large square matmul.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_common.cuh"
#include "model/config.h"
#include "model/layout.h"
#include "util/rng.h"

using namespace diloco;

namespace {

// Deterministic pseudo-random fill on the device, so gigabytes of inputs cost no host time.
__global__ void fill_kernel(void* p, size_t n, bool bf16, uint32_t seed, float scale,
                            float offset) {
    for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
         i += static_cast<size_t>(gridDim.x) * blockDim.x) {
        uint32_t h = static_cast<uint32_t>(i * 2654435761u) ^ seed;
        h ^= h >> 16;
        h *= 0x7feb352du;
        h ^= h >> 15;
        const float x = offset + scale * (static_cast<float>(h >> 8) * 0x1.0p-24f - 0.5f);
        if (bf16)
            static_cast<cuda::bf16*>(p)[i] = __float2bfloat16_rn(x);
        else
            static_cast<float*>(p)[i] = x;
    }
}

struct Bench {
    Backend& backend;
    cudaStream_t stream;
    bool bf16;
    int reps;
    void* flush = nullptr;
    size_t flush_bytes = 0;
    cudaEvent_t start{}, stop{};
    uint32_t seed = 1;
    double bandwidth = 0.0, matmul_flops = 0.0;  // the ceilings, measured by measure_ceilings

    Bench(Backend& b, bool bf16_, int reps_)
        : backend(b), stream(cuda_stream(b)), bf16(bf16_), reps(reps_) {
        int device = 0, l2 = 0;
        CUDA_CHECK(cudaGetDevice(&device));
        CUDA_CHECK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, device));
        flush_bytes = std::max<size_t>(4 * static_cast<size_t>(l2), size_t{256} << 20);
        flush = backend.alloc(flush_bytes);
        CUDA_CHECK(cudaEventCreate(&start));
        CUDA_CHECK(cudaEventCreate(&stop));
    }
    ~Bench() {
        backend.release(flush);
        cudaEventDestroy(start);
        cudaEventDestroy(stop);
    }

    DeviceBuffer storage(size_t n, float scale = 1.0f, float offset = 0.0f) {
        DeviceBuffer buf(backend, n * backend.storage_bytes());
        fill(buf.get(), n, bf16, scale, offset);
        return buf;
    }
    DeviceBuffer floats(size_t n, float scale = 1.0f, float offset = 0.0f) {
        DeviceBuffer buf(backend, n * sizeof(float));
        fill(buf.get(), n, false, scale, offset);
        return buf;
    }
    void fill(void* p, size_t n, bool as_bf16, float scale, float offset) {
        fill_kernel<<<1024, 256, 0, stream>>>(p, n, as_bf16, seed++, scale, offset);
        CUDA_LAUNCH_CHECK();
    }

    // Median milliseconds of op over reps, each after overwriting a buffer larger than L2.
    double time_ms(const std::function<void()>& op) {
        for (int i = 0; i < 3; i++) op();
        CUDA_CHECK(cudaStreamSynchronize(stream));
        std::vector<float> ms;
        for (int r = 0; r < reps; r++) {
            CUDA_CHECK(cudaMemsetAsync(flush, r & 0xff, flush_bytes, stream));
            CUDA_CHECK(cudaEventRecord(start, stream));
            op();
            CUDA_CHECK(cudaEventRecord(stop, stream));
            CUDA_CHECK(cudaEventSynchronize(stop));
            float t = 0.0f;
            CUDA_CHECK(cudaEventElapsedTime(&t, start, stop));
            ms.push_back(t);
        }
        std::sort(ms.begin(), ms.end());
        return ms[ms.size() / 2];
    }

    // The memory ceiling is a 1 GiB device-to-device copy (bytes read plus written), the
    // matmul ceiling our matmul_forward at 8192^3, where cuBLAS runs at its best.
    void measure_ceilings() {
        const size_t bytes = size_t{1} << 30;
        DeviceBuffer from(backend, bytes), to(backend, bytes);
        bandwidth = 2.0 * bytes / (1e-3 * time_ms([&] {
                        CUDA_CHECK(cudaMemcpyAsync(to.get(), from.get(), bytes,
                                                   cudaMemcpyDeviceToDevice, stream));
                    }));
        const int n = 8192;
        DeviceBuffer a = storage(size_t(n) * n), w = storage(size_t(n) * n, 0.05f);
        DeviceBuffer out = storage(size_t(n) * n);
        matmul_flops = 2.0 * n * n * n / (1e-3 * time_ms([&] {
                           backend.matmul_forward(out.get(), nullptr, a.get(), w.get(), nullptr,
                                                  n, n, n);
                       }));
        std::printf("ceilings: copy %.1f GB/s (device to device, 1 GiB), matmul %.1f TFLOP/s "
                    "(%d^3)\n",
                    bandwidth / 1e9, matmul_flops / 1e12, n);
    }

    void memory(const std::string& name, double bytes, const std::function<void()>& op) {
        const double ms = time_ms(op), rate = bytes / (ms * 1e-3);
        std::printf("%-34s %9.3f ms %9.1f GB/s   %5.1f%% of copy\n", name.c_str(), ms, rate / 1e9,
                    100.0 * rate / bandwidth);
    }
    void compute(const std::string& name, double flops, const std::function<void()>& op) {
        const double ms = time_ms(op), rate = flops / (ms * 1e-3);
        std::printf("%-34s %9.3f ms %9.1f TFLOP/s %5.1f%% of matmul\n", name.c_str(), ms,
                    rate / 1e12, 100.0 * rate / matmul_flops);
    }
};

struct Args {
    bool bf16 = true;
    int batch = 8, seq = 1024, reps = 20;
};

Args parse(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; i++) {
        std::string s = argv[i];
        auto value = [&]() {
            if (i + 1 >= argc) throw Error(s + " needs a value");
            return std::atoi(argv[++i]);
        };
        if (s == "--fp32")
            a.bf16 = false;
        else if (s == "--batch")
            a.batch = value();
        else if (s == "--seq")
            a.seq = value();
        else if (s == "--reps")
            a.reps = value();
        else
            throw Error("usage: bench_kernels [--fp32] [--batch B] [--seq T] [--reps N]");
    }
    require(a.batch > 0 && a.seq > 0 && a.reps > 0, "batch, seq and reps must be positive");
    return a;
}

void run(const Args& args) {
    CudaOptions options;
    options.bf16 = args.bf16;
    options.attention = AttentionPath::flash;
    auto backend = make_cuda_backend(options);
    Backend& b = *backend;
    // The other attention paths, each on a backend of its own.
    std::vector<std::pair<std::string, std::unique_ptr<Backend>>> paths;
    paths.emplace_back("plain", nullptr);
    if (args.bf16 && cuda_has_cudnn_attention()) paths.emplace_back("cudnn", nullptr);
    for (auto& [name, other] : paths) {
        options.attention = name == "plain" ? AttentionPath::plain : AttentionPath::cudnn;
        other = make_cuda_backend(options);
    }
    Bench bench(b, args.bf16, args.reps);

    const GptConfig cfg = preset_config("gpt2-124m", 50257);
    const int B = args.batch, T = args.seq, C = cfg.channels, NH = cfg.heads;
    const int V = cfg.vocab, Vp = cfg.padded_vocab;
    const size_t N = static_cast<size_t>(B) * T, e = b.storage_bytes();
    const size_t params = build_layout(cfg).total;
    std::printf("bench_kernels: %s, B=%d T=%d C=%d NH=%d Vp=%d, %zu params, median of %d reps\n",
                b.name().c_str(), B, T, C, NH, Vp, params, args.reps);
    bench.measure_ceilings();

    std::vector<int32_t> host_tokens(N);
    Rng rng(1, 0);
    for (int32_t& t : host_tokens) t = static_cast<int32_t>(rng.below(V));
    DeviceBuffer tokens(b, N * sizeof(int32_t));
    b.upload_bytes(tokens.get(), host_tokens.data(), N * sizeof(int32_t));
    std::vector<int32_t> sorted = host_tokens;
    std::sort(sorted.begin(), sorted.end());
    const double unique =
        static_cast<double>(std::unique(sorted.begin(), sorted.end()) - sorted.begin());

    DeviceBuffer wte = bench.storage(size_t(Vp) * C, 0.04f), wpe = bench.storage(size_t(T) * C);
    DeviceBuffer x = bench.storage(N * C), y = bench.storage(N * C), out = bench.storage(N * C);
    DeviceBuffer res = bench.storage(N * C), dx = bench.storage(N * C);
    DeviceBuffer w1 = bench.storage(C, 0.2f, 1.0f), b1 = bench.storage(C, 0.2f);
    DeviceBuffer mean = bench.floats(N), rstd = bench.floats(N, 0.1f, 1.0f);
    const double nc = static_cast<double>(N) * C * e;

    bench.memory("embedding_forward", 3 * nc, [&] {
        b.embedding_forward(out.get(), tokens.i32(), wte.get(), wpe.get(), B, T, C);
    });
    DeviceBuffer dwte = bench.storage(size_t(Vp) * C), dwpe = bench.storage(size_t(T) * C);
    bench.memory("embedding_backward", nc + 2.0 * unique * C * e + 2.0 * T * C * e, [&] {
        b.embedding_backward(dwte.get(), dwpe.get(), x.get(), tokens.i32(), B, T, C);
    });
    bench.memory("layernorm_forward", 2 * nc, [&] {
        b.layernorm_forward(out.get(), mean.f32(), rstd.f32(), x.get(), w1.get(), b1.get(),
                            static_cast<int>(N), C);
    });
    bench.memory("residual_layernorm_forward", 4 * nc, [&] {
        b.residual_layernorm_forward(res.get(), out.get(), mean.f32(), rstd.f32(), x.get(), y.get(),
                                     w1.get(), b1.get(), static_cast<int>(N), C);
    });
    DeviceBuffer dw1 = bench.storage(C), db1 = bench.storage(C);
    bench.memory("layernorm_backward", 4 * nc, [&] {
        b.layernorm_backward(dx.get(), dw1.get(), db1.get(), y.get(), x.get(), w1.get(), mean.f32(),
                             rstd.f32(), static_cast<int>(N), C);
    });
    bench.memory("residual_forward", 3 * nc,
                 [&] { b.residual_forward(out.get(), x.get(), y.get(), N * C); });

    struct Mm {
        const char* name;
        int in, out;
        bool gelu, bias;
    };
    for (Mm m : {Mm{"qkv", C, 3 * C, false, true}, Mm{"attn proj", C, C, false, true},
                 Mm{"fc + gelu", C, 4 * C, true, true}, Mm{"fc proj", 4 * C, C, false, true},
                 Mm{"lm head", C, Vp, false, false}}) {
        DeviceBuffer inp = bench.storage(N * m.in), w = bench.storage(size_t(m.out) * m.in, 0.05f);
        DeviceBuffer bias = bench.storage(m.out), o = bench.storage(N * m.out);
        DeviceBuffer pre = bench.storage(m.gelu ? N * m.out : 1);
        DeviceBuffer din = bench.storage(N * m.in), dw = bench.storage(size_t(m.out) * m.in);
        DeviceBuffer db = bench.storage(m.out);
        const double flops = 2.0 * N * m.in * m.out;
        bench.compute(std::string("matmul_forward ") + m.name, flops, [&] {
            b.matmul_forward(o.get(), m.gelu ? pre.get() : nullptr, inp.get(), w.get(),
                             m.bias ? bias.get() : nullptr, static_cast<int>(N), m.in, m.out);
        });
        bench.compute(std::string("matmul_backward ") + m.name, 2 * flops, [&] {
            b.matmul_backward(din.get(), dw.get(), m.bias ? db.get() : nullptr, o.get(), inp.get(),
                              w.get(), m.gelu ? pre.get() : nullptr, static_cast<int>(N), m.in,
                              m.out);
        });
    }

    // Causal attention does half the T x T work: forward QK^T and PV, backward four products.
    const double att_flops = 2.0 * B * NH * double(T) * T * (C / NH);
    DeviceBuffer qkv = bench.storage(N * 3 * C), dqkv = bench.storage(N * 3 * C);
    DeviceBuffer lse = bench.floats(b.attention_stats_floats(B, T, NH));
    std::vector<std::pair<std::string, Backend*>> timed{{"flash", &b}};
    for (auto& [name, other] : paths) timed.emplace_back(name, other.get());
    for (auto& [name, a] : timed) {
        const std::string tag = " (" + name + ")";
        b.synchronize();  // inputs were filled on b's stream; events go on the timed one
        bench.stream = cuda_stream(*a);
        bench.compute("attention_forward" + tag, att_flops,
                      [&] { a->attention_forward(out.get(), lse.f32(), qkv.get(), B, T, C, NH); });
        a->synchronize();
        bench.compute("attention_backward" + tag, 2 * att_flops, [&] {
            a->attention_backward(dqkv.get(), y.get(), qkv.get(), out.get(), lse.f32(), B, T, C,
                                  NH);
        });
    }

    for (auto& [name, a] : timed) a->synchronize();
    bench.stream = cuda_stream(b);
    DeviceBuffer logits = bench.storage(N * Vp, 4.0f), losses = bench.floats(N);
    const double nv = static_cast<double>(N) * Vp * e;
    bench.memory("softmax_cross_entropy (+host sum)", 2 * nv, [&] {
        b.softmax_cross_entropy(logits.get(), losses.f32(), tokens.i32(), static_cast<int>(N), V,
                                Vp, 1.0f / N);
    });

    DeviceBuffer p = bench.storage(params, 0.1f), g = bench.storage(params, 0.01f);
    DeviceBuffer master = bench.floats(params, 0.1f), m1 = bench.floats(params, 0.001f);
    DeviceBuffer m2 = bench.floats(params, 0.001f, 0.001f);
    bench.memory("sum_squares (grad norm)", double(params) * e,
                 [&] { b.sum_squares(g.get(), params); });
    int step = 1;
    const double adam_bytes = args.bf16 ? params * (2.0 * e + 24.0) : params * 28.0;
    bench.memory("adamw_update", adam_bytes, [&] {
        b.adamw_update(p.get(), args.bf16 ? master.f32() : nullptr, g.get(), m1.f32(), m2.f32(),
                       params, 1e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f, step++, 0, 1);
    });
    b.synchronize();
}

}  // namespace

int main(int argc, char** argv) {
    if (cuda_device_count() == 0) {
        std::printf("SKIPPED: no CUDA device\n");
        return 77;
    }
    try {
        run(parse(argc, argv));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_kernels: %s\n", e.what());
        return 1;
    }
    return 0;
}
