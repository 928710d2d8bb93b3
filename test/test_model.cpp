// Tests of the whole GPT on the CPU backend: gradients against finite differences, the loss at
// initialisation, overfitting one batch, presets and impossible configs.
#include <catch2/catch.hpp>
#include <cmath>
#include <string>

#include "model/gpt.h"
#include "optim/adamw.h"
#include "util/error.h"
#include "util/rng.h"

using namespace diloco;

namespace {

// A vocabulary of 23 padded to 64: the padding must get no gradient and change no loss.
GptConfig small_config() { return gpt_config(23, 8, 2, 2, 8); }

std::vector<int32_t> random_tokens(size_t n, int vocab, uint64_t seed) {
    Rng rng(seed, 7);
    std::vector<int32_t> t(n);
    for (int32_t& x : t) x = static_cast<int32_t>(rng.below(vocab));
    return t;
}

}  // namespace

TEST_CASE("model gradient matches finite differences, tensor by tensor", "[model]") {
    auto backend = make_cpu_backend();
    GptConfig c = small_config();
    const int B = 2, T = 5;
    Gpt model(*backend, c, B, T);
    // Larger-than-GPT-2 init so that every tensor has gradients well above fp32 noise.
    std::vector<float> p = init_gpt2_params(c, model.layout(), 3);
    Rng jitter(11, 0);
    for (float& x : p) x += static_cast<float>(0.1 * jitter.normal());
    for (size_t i = c.vocab * c.channels; i < static_cast<size_t>(c.padded_vocab) * c.channels; i++)
        p[i] = 0.0f;
    model.set_params(p);
    auto tokens = random_tokens(B * T, c.vocab, 1), targets = random_tokens(B * T, c.vocab, 2);
    model.zero_grads();
    model.forward_backward(tokens.data(), targets.data(), B, T);
    std::vector<float> g = model.get_grads();

    // Directional derivative along a random unit vector inside each tensor. In fp32 the loss
    // (about 3) carries ~3e-7 rounding; with eps = 1e-2 that is ~2e-5 of noise in the slope,
    // and the eps^2 truncation term is ~1e-4 relative, so 2% + 1e-4 absolute is a tight bound.
    const float eps = 1e-2f;
    Rng dir(5, 0);
    for (const ParamTensor& t : model.layout().tensors) {
        size_t n = t.offset == model.layout().wte ? size_t(c.vocab) * c.channels : t.size;
        std::vector<double> u(n);
        double norm = 0;
        for (double& x : u) {
            x = dir.normal();
            norm += x * x;
        }
        for (double& x : u) x /= std::sqrt(norm);
        double analytic = 0;
        for (size_t i = 0; i < n; i++) analytic += g[t.offset + i] * u[i];
        auto loss_at = [&](float sign) {
            std::vector<float> q = p;
            for (size_t i = 0; i < n; i++) q[t.offset + i] += sign * eps * static_cast<float>(u[i]);
            model.set_params(q);
            return model.evaluate(tokens.data(), targets.data(), B, T);
        };
        double numeric = (loss_at(1) - loss_at(-1)) / (2 * eps);
        INFO(t.name << ": analytic " << analytic << ", numeric " << numeric);
        CHECK(std::abs(analytic - numeric) <= 0.02 * std::abs(numeric) + 1e-4);
    }
    // The padded rows of the tied embedding are never real outputs: no gradient reaches them.
    for (size_t i = c.vocab * c.channels; i < size_t(c.padded_vocab) * c.channels; i++)
        REQUIRE(g[i] == 0.0f);
}

TEST_CASE("loss at initialisation is close to ln(vocab)", "[model]") {
    auto backend = make_cpu_backend();
    GptConfig c = preset_config("tiny", 256);
    const int B = 4, T = 64;
    Gpt model(*backend, c, B, T);
    model.set_params(init_gpt2_params(c, model.layout(), 1337));
    auto tokens = random_tokens(B * T, c.vocab, 3), targets = random_tokens(B * T, c.vocab, 4);
    double loss = model.evaluate(tokens.data(), targets.data(), B, T);
    CHECK(std::abs(loss - std::log(256.0)) < 0.1);
}

TEST_CASE("a batch with a token outside the vocabulary is a clear error", "[model]") {
    auto backend = make_cpu_backend();
    GptConfig c = preset_config("tiny", 256);
    const int B = 2, T = 8;
    Gpt model(*backend, c, B, T);
    auto tokens = random_tokens(B * T, c.vocab, 3);
    tokens[5] = 256;
    tokens[9] = -1;
    CHECK_THROWS_WITH(model.evaluate(tokens.data(), tokens.data(), B, T),
                      "token id 256 outside the vocabulary of 256");
}

// Gpt::check_shape runs at every micro-batch: its message is built only when it fails.
TEST_CASE("a batch larger than the model's buffers is a clear error, built only then",
          "[model]") {
    int built = 0;
    auto message = [&] {
        built++;
        return std::string("built");
    };
    require(true, message);
    CHECK(built == 0);
    CHECK_THROWS_WITH(require(false, message), "built");
    CHECK(built == 1);
    auto backend = make_cpu_backend();
    GptConfig c = preset_config("tiny", 256);
    Gpt model(*backend, c, 2, 8);
    auto tokens = random_tokens(3 * 8, c.vocab, 3);
    CHECK_THROWS_WITH(model.evaluate(tokens.data(), tokens.data(), 3, 8),
                      "batch 3x8 exceeds the model's 2x8");
    CHECK_THROWS_WITH(model.evaluate(tokens.data(), tokens.data(), 2, 9),
                      "batch 2x9 exceeds the model's 2x8");
}

TEST_CASE("the model overfits one fixed batch", "[model]") {
    auto backend = make_cpu_backend();
    GptConfig c = small_config();
    c.channels = 32, c.heads = 4, c.max_seq = 16, c.vocab = 40, c.padded_vocab = 64;
    const int B = 2, T = 16;
    Gpt model(*backend, c, B, T);
    model.set_params(init_gpt2_params(c, model.layout(), 9));
    AdamW adamw(*backend, model.layout(), {0.9f, 0.95f, 1e-8f, 0.0f});
    auto tokens = random_tokens(B * T, c.vocab, 5), targets = random_tokens(B * T, c.vocab, 6);
    double loss = 0;
    for (int step = 0; step < 300 && (step == 0 || loss >= 0.05); step++) {
        model.zero_grads();
        loss = model.forward_backward(tokens.data(), targets.data(), B, T);
        adamw.step(model.params(), model.master(), model.grads(), 3e-3f, 1.0f);
    }
    loss = model.evaluate(tokens.data(), targets.data(), B, T);
    CHECK(loss < 0.05);
}

TEST_CASE("presets have the published shapes", "[model]") {
    GptConfig g = preset_config("gpt2-124m", 50257);
    CHECK(g.padded_vocab == 50304);
    CHECK(build_layout(g).total == 124475904u);  // llm.c's count with the padded vocabulary
    GptConfig p = preset_config("paper-150m", 32000);
    CHECK((p.layers == 12 && p.channels == 896 && p.channels / p.heads == 64 && p.max_seq == 1024));
    GptConfig s = preset_config("paper-60m", 32000);
    CHECK((s.layers == 3 && s.channels == 896 && s.channels / s.heads == 64));
    GptConfig l = preset_config("paper-400m", 32000);
    CHECK((l.channels == 1536 && l.channels / l.heads == 128));
    CHECK_THROWS_WITH(preset_config("gpt5", 256), Catch::Contains("unknown preset 'gpt5'"));
}

TEST_CASE("impossible configs are clear errors", "[model]") {
    GptConfig c = preset_config("tiny", 256);
    c.heads = 3;
    CHECK_THROWS_WITH(validate(c), Catch::Contains("does not divide"));
    c = preset_config("tiny", 256);
    c.layers = 0;
    CHECK_THROWS_WITH(validate(c), Catch::Contains("layers = 0"));
    auto backend = make_cpu_backend();
    c = preset_config("tiny", 256);
    CHECK_THROWS_WITH(Gpt(*backend, c, 2, c.max_seq + 1),
                      Catch::Contains("exceeds the position table"));
}

TEST_CASE("layout names follow GPT-2 and cover the buffer exactly once", "[model]") {
    GptConfig c = small_config();
    ParamLayout layout = build_layout(c);
    size_t next = 0;
    for (const ParamTensor& t : layout.tensors) {
        CHECK(t.offset == next);
        next += t.size;
    }
    CHECK(next == layout.total);
    CHECK(layout.find("h.1.mlp.c_proj.weight").residual_projection);
    CHECK_FALSE(layout.find("h.0.ln_1.bias").decay);
    CHECK(layout.find("wte.weight").decay);
}

TEST_CASE("two micro-batches with loss scale 1/2 give one batch's mean and gradients", "[model]") {
    auto backend = make_cpu_backend();
    GptConfig c = small_config();
    const int B = 4, T = 6;
    auto tokens = random_tokens(B * T, c.vocab, 21), targets = random_tokens(B * T, c.vocab, 22);
    Gpt whole(*backend, c, B, T), micro(*backend, c, B / 2, T);
    std::vector<float> init = init_gpt2_params(c, whole.layout(), 4);
    whole.set_params(init);
    micro.set_params(init);
    const double loss = whole.forward_backward(tokens.data(), targets.data(), B, T);
    double micro_loss = 0;
    for (int m = 0; m < 2; m++) {
        const size_t rows = size_t(m) * (B / 2) * T;
        micro_loss += micro.forward_backward(tokens.data() + rows, targets.data() + rows, B / 2,
                                             T, 0.5f) / 2;
        micro.fold_grads();  // fp32 storage: the sum stays in grads() itself
    }
    micro.store_grads();
    CHECK(micro_loss == Approx(loss).epsilon(1e-12));
    std::vector<float> a = whole.get_grads(), b = micro.get_grads();
    double worst = 0, scale = 0;
    for (size_t i = 0; i < a.size(); i++) {
        worst = std::max(worst, std::abs(double(a[i]) - double(b[i])));
        scale = std::max(scale, std::abs(double(a[i])));
    }
    REQUIRE(scale > 1e-3);
    CHECK(worst < 1e-6 * scale);  // only the order of fp32 sums differs
}
