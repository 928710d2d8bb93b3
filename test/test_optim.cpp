// Tests of the optimizer pieces: the learning-rate schedule at chosen steps, AdamW through the
// model layout (decay on matrices, none on biases and LayerNorm), global-norm clipping, and when
// a run evaluates.
#include <catch2/catch.hpp>
#include <cmath>

#include "model/layout.h"
#include "optim/adamw.h"
#include "optim/eval_policy.h"
#include "optim/schedule.h"

using namespace diloco;

TEST_CASE("warm-up then cosine schedule", "[optim]") {
    LrSchedule s{1e-3f, 10, 110, 0.1f};
    CHECK(s.at(0) == Approx(1e-4).epsilon(1e-6));   // (0+1)/10 of the peak
    CHECK(s.at(4) == Approx(5e-4).epsilon(1e-6));
    CHECK(s.at(9) == Approx(1e-3).epsilon(1e-6));   // warm-up ends at the peak
    CHECK(s.at(10) == Approx(1e-3).epsilon(1e-6));  // cosine starts at the peak
    CHECK(s.at(60) == Approx(0.55e-3).epsilon(1e-6));  // halfway: (peak + floor) / 2
    CHECK(s.at(110) == Approx(1e-4).epsilon(1e-6));    // the floor
    CHECK(s.at(500) == Approx(1e-4).epsilon(1e-6));    // and it stays there
    LrSchedule flat{2e-3f, 0, 1, 1.0f};
    CHECK(flat.at(0) == Approx(2e-3));
}

TEST_CASE("AdamW decays matrices and embeddings only", "[optim]") {
    auto backend = make_cpu_backend();
    GptConfig c{5, 64, 4, 1, 1, 2};  // vocab, padded, max_seq, layers, heads, channels
    ParamLayout layout = build_layout(c);
    const size_t n = layout.total;
    std::vector<float> p(n), g(n);
    for (size_t i = 0; i < n; i++) {
        p[i] = 0.5f + 0.01f * static_cast<float>(i % 17);
        g[i] = 0.1f * static_cast<float>(int(i % 7) - 3);
    }
    DeviceBuffer params(*backend, n * 4), grads(*backend, n * 4);
    backend->upload(params.get(), p.data(), n);
    backend->upload(grads.get(), g.data(), n);
    const float lr = 0.01f, b1 = 0.9f, b2 = 0.95f, eps = 1e-8f, wd = 0.1f, scale = 0.5f;
    AdamW adamw(*backend, layout, {b1, b2, eps, wd});
    adamw.step(params.get(), nullptr, grads.get(), lr, scale);
    adamw.step(params.get(), nullptr, grads.get(), lr, scale);
    std::vector<float> got(n);
    backend->download(got.data(), params.get(), n);
    for (const ParamTensor& t : layout.tensors) {
        for (size_t i = t.offset; i < t.offset + t.size; i++) {
            // Two steps by hand, in double, with the same gradient each step.
            double x = p[i], m = 0, v = 0, gi = double(g[i]) * scale;
            for (int step = 1; step <= 2; step++) {
                m = b1 * m + (1 - b1) * gi;
                v = b2 * v + (1 - b2) * gi * gi;
                double mhat = m / (1 - std::pow(b1, step)), vhat = v / (1 - std::pow(b2, step));
                x -= lr * (mhat / (std::sqrt(vhat) + eps) + (t.decay ? wd : 0.0) * x);
            }
            INFO(t.name << "[" << i - t.offset << "]");
            REQUIRE(got[i] == Approx(x).epsilon(1e-6));
        }
    }
    CHECK(adamw.steps_taken() == 2);
}

TEST_CASE("clipping by global norm", "[optim]") {
    auto backend = make_cpu_backend();
    std::vector<float> g = {3, 0, 4, 0, 0, 12};  // norm 13
    DeviceBuffer grads(*backend, g.size() * 4);
    backend->upload(grads.get(), g.data(), g.size());
    ClipResult clipped = clip_by_global_norm(*backend, grads.get(), g.size(), 1.0f);
    CHECK(clipped.norm == Approx(13.0));
    CHECK(clipped.scale == Approx(1.0 / 13.0));
    CHECK(clip_by_global_norm(*backend, grads.get(), g.size(), 20.0f).scale == 1.0f);
    CHECK(clip_by_global_norm(*backend, grads.get(), g.size(), 0.0f).scale == 1.0f);
}

TEST_CASE("evaluations: diloco's after the round reaching each multiple, the others' at it",
          "[optim]") {
    const EvalPolicy diloco{10, 40, Mode::diloco, 4};  // rounds end at 4, 8, 12, ...
    CHECK_FALSE(diloco.due(8, true));
    CHECK(diloco.due(12, true));   // the round that follows 10
    CHECK(diloco.due(20, true));   // the round that ends at 20
    CHECK_FALSE(diloco.due(20, false));  // its outer step not taken yet
    CHECK_FALSE(diloco.due(24, true));
    CHECK(diloco.due(40, false));  // the last step, always
    const EvalPolicy every_round{3, 40, Mode::diloco, 4};  // --eval-every <= H
    for (int step = 4; step < 40; step += 4) CHECK(every_round.due(step, true));
    const EvalPolicy local{10, 35, Mode::local, 4};
    CHECK(local.due(10, false));
    CHECK_FALSE(local.due(12, true));
    CHECK(local.due(35, false));
    const EvalPolicy at_end{0, 35, Mode::ddp, 4};
    CHECK_FALSE(at_end.due(10, true));
    CHECK(at_end.due(35, true));
}
