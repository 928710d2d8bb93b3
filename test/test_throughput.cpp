// Tests of throughput figures: llm.c's FLOP count against a count by hand, the GPU peak table's
// name matching, the CPU matmul probe, peak memory, fp32 sums, and a run's metrics fields.
#include <catch2/catch.hpp>
#include <cmath>

#include "kernels/backend.h"
#include "kernels/peak.h"
#include "model/flops.h"
#include "model/layout.h"
#include "test/helpers.h"
#include "test/island_runs.h"

using namespace diloco;

TEST_CASE("training FLOPs per token are 6N + 6LTC, N every stored parameter", "[throughput]") {
    GptConfig c;
    c.vocab = 10, c.padded_vocab = 64, c.max_seq = 16, c.layers = 2, c.heads = 2, c.channels = 8;
    // By hand, C = 8: wte 64 x 8 = 512, wpe 16 x 8 = 128; per layer 2 LayerNorms 4C = 32,
    // qkv 3C^2 + 3C = 216, attention projection C^2 + C = 72, MLP 4C^2 + 4C = 288 and
    // 4C^2 + C = 264: 872; final LayerNorm 16. N = 512 + 128 + 2 x 872 + 16 = 2400.
    REQUIRE(build_layout(c).total == 2400u);
    // T = 4: 6 x 2400 + 6 x 2 x 4 x 8 = 14400 + 384.
    CHECK(training_flops_per_token(c, 4) == 14784.0);
    // GPT-2 124M at T = 1024: llm.c's 124,475,904 parameters (vocabulary padded to 50,304),
    // 6 x 124,475,904 + 6 x 12 x 1024 x 768 = 746,855,424 + 56,623,104.
    CHECK(training_flops_per_token(preset_config("gpt2-124m", 50257), 1024) == 803478528.0);
}

TEST_CASE("the GPU peak table matches whole names and knows what it does not know",
          "[throughput]") {
    CHECK(gpu_bf16_peak_flops("NVIDIA H100 80GB HBM3") == 989.4e12);
    CHECK(gpu_bf16_peak_flops("NVIDIA H100 PCIe") == 756.5e12);
    CHECK(gpu_bf16_peak_flops("NVIDIA H100 NVL") == 835.5e12);
    CHECK(gpu_bf16_peak_flops("NVIDIA H200") == 989.4e12);
    CHECK(gpu_bf16_peak_flops("NVIDIA H200 NVL") == 835.5e12);
    CHECK(gpu_bf16_peak_flops("NVIDIA GH200 480GB") == 989.4e12);
    CHECK(gpu_bf16_peak_flops("NVIDIA A100-SXM4-80GB") == 312e12);
    CHECK(gpu_bf16_peak_flops("NVIDIA A100 80GB PCIe") == 312e12);
    CHECK(gpu_bf16_peak_flops("NVIDIA L40S") == 362.05e12);
    CHECK(gpu_bf16_peak_flops("NVIDIA L4") == 121e12);
    CHECK(gpu_bf16_peak_flops("NVIDIA GeForce RTX 4090") == 165.2e12);
    // Unknown: no figure rather than the nearest name's ("A10" is not "A10G", "H100" alone
    // could be any of three).
    CHECK(gpu_bf16_peak_flops("NVIDIA A10G") == 0);
    CHECK(gpu_bf16_peak_flops("NVIDIA H100") == 0);
    CHECK(gpu_bf16_peak_flops("Tesla V100-SXM2-16GB") == 0);
    CHECK(gpu_bf16_peak_flops("") == 0);
}

TEST_CASE("the CPU matmul probe gives a positive rate and frees its buffers", "[throughput]") {
    auto backend = make_cpu_backend();
    const double rate = measure_matmul_flops(*backend, 64, 64, 64, 2);
    CHECK(rate > 1e6);  // any CPU does a million FLOP/s
    CHECK(std::isfinite(rate));
    // Its buffers (three of 64 x 64 floats and a bias) were the backend's peak, and are gone:
    // a smaller allocation now leaves the peak where it was.
    const size_t peak = backend->peak_memory_bytes();
    CHECK(peak == 3 * 64 * 64 * 4 + 64 * 4);
    DeviceBuffer after(*backend, 40000);
    CHECK(backend->peak_memory_bytes() == peak);
}

TEST_CASE("cpu backend: peak memory is the high-water mark of live allocations",
          "[throughput]") {
    auto backend = make_cpu_backend();
    CHECK(backend->peak_memory_bytes() == 0);
    {
        DeviceBuffer a(*backend, 6400), b(*backend, 640);
        CHECK(backend->peak_memory_bytes() == 6400 + 640);
    }
    DeviceBuffer c(*backend, 3200);
    CHECK(backend->peak_memory_bytes() == 6400 + 640);
    DeviceBuffer d(*backend, 6400);
    CHECK(backend->peak_memory_bytes() == 3200 + 6400);
}

TEST_CASE("cpu backend: fp32 gradient sums add and store exactly", "[throughput]") {
    auto backend = make_cpu_backend();
    std::vector<float> x = {1.5f, -2.0f, 0.25f}, sum = {1.0f, 1.0f, 1.0f};
    backend->accumulate_f32(sum.data(), x.data(), 3);
    CHECK(sum == std::vector<float>{2.5f, -1.0f, 1.25f});
    std::vector<float> out(3);
    backend->store_f32(out.data(), sum.data(), 3);
    CHECK(out == sum);
    CHECK(!backend->device_name().empty());
}

TEST_CASE("a CPU run's records carry tokens/s, MFU and peak memory, consistent", "[throughput]") {
    test::TempDir dir;
    test::write_text(dir.file("d.txt"), test::synthetic_text(30000, 5));
    auto r = test::run_diloco("train --data " + dir.file("d.txt") +
                              " --batch 4 --grad-accum 2 --seq 32 --val-batches 2 --steps 3 "
                              "--eval-every 3 --log " + dir.file("log.jsonl"));
    test::islands::require_ok(r);
    const GptConfig tiny = preset_config("tiny", 256);
    const double n_params = double(build_layout(tiny).total);
    const double step_tokens = 4 * 2 * 32;
    auto recs = test::islands::events(dir.file("log.jsonl"), "step");
    REQUIRE(recs.size() == 3);
    const auto last = test::islands::last_eval(dir.file("log.jsonl"));
    // The evaluation record says what MFU was computed from.
    CHECK(last.at("flops_per_token").get<double>() == training_flops_per_token(tiny, 32));
    const double peak = last.at("peak_flops").get<double>();
    CHECK(peak > 1e6);
    CHECK(last.at("peak_source").get<std::string>().find("measured") != std::string::npos);
    for (const auto& j : recs) {
        const double seconds = j.at("ms").get<double>() / 1000;
        CHECK(j.at("tokens_per_s").get<double>() == Approx(step_tokens / seconds));
        const double mfu = j.at("mfu").get<double>();
        CHECK(mfu == Approx(step_tokens * training_flops_per_token(tiny, 32) / seconds / peak));
        // Not below 1: the CPU's peak is a matmul timed at start, which a busy machine (other
        // tests running beside this one) makes arbitrarily slow.
        CHECK(mfu > 0);
        // At least parameters, gradients and AdamW's two moments, in fp32; far from a GB.
        const double mem = j.at("peak_mem_bytes").get<double>();
        CHECK(mem >= 4 * 4 * n_params);
        CHECK(mem < 1e9);
    }
    CHECK(r.out.find("tok/s | MFU ") != std::string::npos);
    CHECK(r.out.find("model FLOPs per token (6N + 6LTC), peak ") != std::string::npos);
}
