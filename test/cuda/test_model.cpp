// The whole GPT on the CUDA backend against the CPU oracle (loss and every gradient tensor after
// one forward and backward, also over micro-batches), a bf16 AdamW run that overfits a batch, and
// generation from a one-token prompt with cuDNN attention (which refuses T = 1) against flash.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>

#include "model/gpt.h"
#include "optim/adamw.h"
#include "test/cuda/oracle.h"

using namespace diloco;
using namespace diloco::test;

namespace {

// A vocabulary of 50 padded to 64: the padding must get no gradient.
GptConfig small_config() { return gpt_config(50, 16, 2, 4, 64); }

// Every gradient tensor of the GPU model against the CPU's.
void check_grads_match(Gpt& ref, Gpt& model, bool bf16) {
    const std::vector<float> gw = ref.get_grads(), gg = model.get_grads();
    for (const ParamTensor& t : ref.layout().tensors) {
        INFO(t.name);
        std::vector<float> a(gg.begin() + t.offset, gg.begin() + t.offset + t.size);
        std::vector<float> b(gw.begin() + t.offset, gw.begin() + t.offset + t.size);
        CHECK(rel_error(a, b) < (bf16 ? 5e-2 : 1e-4));
    }
}

}  // namespace

TEST_CASE("GPT loss and gradients on CUDA match the CPU", "[cuda][model]") {
    const bool bf16 = GENERATE(false, true);
    const GptConfig c = small_config();
    const int B = 2, T = 16;
    Gpt ref(cpu(), c, B, T), model(gpu(bf16), c, B, T);
    const std::vector<float> p = as_stored(gpu(bf16), init_gpt2_params(c, ref.layout(), 1));
    ref.set_params(p);
    model.set_params(p);
    const auto tokens = random_ints(B * T, c.vocab, 1), targets = random_ints(B * T, c.vocab, 2);
    ref.zero_grads();
    model.zero_grads();
    const double want = ref.forward_backward(tokens.data(), targets.data(), B, T);
    const double got = model.forward_backward(tokens.data(), targets.data(), B, T);
    CHECK(std::fabs(got - want) / want < (bf16 ? 1e-2 : 1e-5));
    check_grads_match(ref, model, bf16);
}

TEST_CASE("AdamW on CUDA (bf16) overfits one batch", "[cuda][model]") {
    const GptConfig c = small_config();
    const int B = 2, T = 16;
    Backend& g = gpu(true);
    Gpt model(g, c, B, T);
    model.set_params(init_gpt2_params(c, model.layout(), 3));
    AdamW opt(g, model.layout(), AdamWConfig{});
    const auto tokens = random_ints(B * T, c.vocab, 4), targets = random_ints(B * T, c.vocab, 5);
    double first = 0.0, last = 0.0;
    for (int step = 0; step < 40; step++) {
        model.zero_grads();
        last = model.forward_backward(tokens.data(), targets.data(), B, T);
        if (step == 0) first = last;
        opt.step(model.params(), model.master(), model.grads(), 3e-3f, 1.0f);
    }
    INFO("first loss " << first << ", last " << last);
    CHECK(std::isfinite(last));
    CHECK(last < 0.7 * first);
}

TEST_CASE("micro-batches summed in fp32 on CUDA match the CPU's whole batch", "[cuda][model]") {
    const bool bf16 = GENERATE(false, true);
    const GptConfig c = small_config();
    const int micro = 4, B = 2, T = 16;
    Gpt ref(cpu(), c, micro * B, T), model(gpu(bf16), c, B, T);
    const std::vector<float> p = as_stored(gpu(bf16), init_gpt2_params(c, ref.layout(), 6));
    ref.set_params(p);
    model.set_params(p);
    const auto tokens = random_ints(micro * B * T, c.vocab, 7);
    const auto targets = random_ints(micro * B * T, c.vocab, 8);
    ref.zero_grads();
    const double want = ref.forward_backward(tokens.data(), targets.data(), micro * B, T);
    model.zero_grads();
    double got = 0;
    for (int m = 0; m < micro; m++) {
        const size_t rows = size_t(m) * B * T;
        got += model.forward_backward(tokens.data() + rows, targets.data() + rows, B, T,
                                      1.0f / micro) / micro;
        model.fold_grads();
    }
    model.store_grads();
    CHECK(std::fabs(got - want) / want < (bf16 ? 1e-2 : 1e-5));
    check_grads_match(ref, model, bf16);
}

TEST_CASE("generation from a one-token prompt runs with cuDNN attention", "[cuda][model]") {
    if (!cuda_has_cudnn_attention()) {
        WARN("this build has no cuDNN attention");
        return;
    }
    const GptConfig c = small_config();
    const int window = 6;
    // As `diloco generate --attention cudnn --prompt X`: one sequence, the context growing from
    // one token, the logits of its last position each time.
    Gpt with_cudnn(gpu(true, AttentionPath::cudnn), c, 1, window);
    Gpt with_flash(gpu(true, AttentionPath::flash), c, 1, window);
    const std::vector<float> p = init_gpt2_params(c, with_cudnn.layout(), 9);
    with_cudnn.set_params(p);
    with_flash.set_params(p);
    std::vector<int32_t> context{7};
    for (int T = 1; T <= window; T++) {
        INFO("T=" << T);
        const std::vector<float> got = with_cudnn.last_logits(context.data(), T);
        const std::vector<float> want = with_flash.last_logits(context.data(), T);
        if (T == 1) CHECK(same_bits(got, want));  // cuDNN refuses T = 1: flash ran it
        CHECK(rel_error(got, want) < 3e-2);  // a few bf16 roundings apart
        context.push_back(static_cast<int32_t>(std::max_element(want.begin(), want.end()) -
                                               want.begin()));
    }
}
