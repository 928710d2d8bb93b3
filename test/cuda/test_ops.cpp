// Every CUDA op against its CPU twin on fresh random inputs, at several shapes (odd sizes, T = 1),
// in fp32 and bf16 storage; outputs start as NaN, and two GPU runs must give the same bits.
#include <catch2/catch.hpp>

#include <memory>
#include <string>

#include "test/cuda/oracle.h"
#include "util/error.h"

using namespace diloco;
using namespace diloco::test;

namespace {

struct Rows {
    int N, C;
};
std::vector<Rows> row_shapes() { return shapes<Rows>({{1, 8}, {3, 37}, {17, 64}, {130, 768}}, 3); }

}  // namespace

TEST_CASE("embedding forward and backward match the CPU", "[cuda][sanitize]") {
    const bool bf16 = GENERATE(false, true);
    struct Shape {
        int B, T, C, V;
    };
    for (Shape s : shapes<Shape>(
             {Shape{1, 1, 8, 5}, Shape{2, 5, 12, 7}, Shape{3, 17, 37, 11}, Shape{4, 64, 768, 50}},
             2)) {
        INFO("B=" << s.B << " T=" << s.T << " C=" << s.C);
        Backend& g = gpu(bf16);
        const size_t N = size_t(s.B) * s.T, C = s.C;
        const auto tokens = random_ints(N, s.V, 1);
        const auto wte = as_stored(g, random_values(s.V * C, 2));
        const auto wpe = as_stored(g, random_values(s.T * C, 3));
        const auto dout = as_stored(g, random_values(N * C, 4));
        const auto dwte0 = as_stored(g, random_values(s.V * C, 5));
        const auto dwpe0 = as_stored(g, random_values(s.T * C, 6));
        compare_with_cpu(
            [&](Backend& b) {
                DeviceBuffer tk = put_raw(b, tokens), w = put(b, wte), p = put(b, wpe);
                DeviceBuffer out = put(b, nans(N * C)), d = put(b, dout);
                DeviceBuffer dw = put(b, dwte0), dp = put(b, dwpe0);
                b.embedding_forward(out.get(), tk.i32(), w.get(), p.get(), s.B, s.T, s.C);
                b.embedding_backward(dw.get(), dp.get(), d.get(), tk.i32(), s.B, s.T, s.C);
                return Outputs{get(b, out, N * C), get(b, dw, s.V * C), get(b, dp, s.T * C)};
            },
            bf16);
    }
}

TEST_CASE("layernorm and residual + layernorm forward match the CPU", "[cuda][sanitize]") {
    const bool bf16 = GENERATE(false, true);
    for (Rows s : row_shapes()) {
        INFO("N=" << s.N << " C=" << s.C);
        Backend& g = gpu(bf16);
        const size_t n = size_t(s.N) * s.C;
        const auto a = as_stored(g, random_values(n, 1, 2.0f, 0.5f));
        const auto r = as_stored(g, random_values(n, 2));
        const auto w = as_stored(g, random_values(s.C, 3, 0.5f, 1.0f));
        const auto bias = as_stored(g, random_values(s.C, 4));
        compare_with_cpu(
            [&](Backend& b) {
                DeviceBuffer x = put(b, a), y = put(b, r), wt = put(b, w), bs = put(b, bias);
                DeviceBuffer out = put(b, nans(n)), res = put(b, nans(n)), out2 = put(b, nans(n));
                DeviceBuffer mean = put_raw(b, nans(s.N)), rstd = put_raw(b, nans(s.N));
                DeviceBuffer mean2 = put_raw(b, nans(s.N)), rstd2 = put_raw(b, nans(s.N));
                b.layernorm_forward(out.get(), mean.f32(), rstd.f32(), x.get(), wt.get(), bs.get(),
                                    s.N, s.C);
                b.residual_layernorm_forward(res.get(), out2.get(), mean2.f32(), rstd2.f32(),
                                             x.get(), y.get(), wt.get(), bs.get(), s.N, s.C);
                return Outputs{get(b, out, n),        get_raw(b, mean, s.N), get_raw(b, rstd, s.N),
                               get(b, res, n),        get(b, out2, n),       get_raw(b, mean2, s.N),
                               get_raw(b, rstd2, s.N)};
            },
            bf16);
    }
}

TEST_CASE("layernorm backward matches the CPU and accumulates", "[cuda][sanitize]") {
    const bool bf16 = GENERATE(false, true);
    for (Rows s : row_shapes()) {
        INFO("N=" << s.N << " C=" << s.C);
        Backend& g = gpu(bf16);
        const size_t n = size_t(s.N) * s.C;
        const auto x = as_stored(g, random_values(n, 1, 2.0f, 0.5f));
        const auto w = as_stored(g, random_values(s.C, 3, 0.5f, 1.0f));
        const auto dout = as_stored(g, random_values(n, 5));
        const auto dinp0 = as_stored(g, random_values(n, 6));
        const auto dw0 = as_stored(g, random_values(s.C, 7));
        const auto db0 = as_stored(g, random_values(s.C, 8));
        // Both backends read the same statistics: the oracle's.
        std::vector<float> mean(s.N), rstd(s.N);
        {
            Backend& c = cpu();
            DeviceBuffer xi = put(c, x), wt = put(c, w), bs = put(c, db0), out = put(c, nans(n));
            DeviceBuffer m = put_raw(c, mean), r = put_raw(c, rstd);
            c.layernorm_forward(out.get(), m.f32(), r.f32(), xi.get(), wt.get(), bs.get(), s.N,
                                s.C);
            mean = get_raw(c, m, s.N);
            rstd = get_raw(c, r, s.N);
        }
        compare_with_cpu(
            [&](Backend& b) {
                DeviceBuffer xi = put(b, x), wt = put(b, w), d = put(b, dout);
                DeviceBuffer di = put(b, dinp0), dw = put(b, dw0), db = put(b, db0);
                DeviceBuffer m = put_raw(b, mean), r = put_raw(b, rstd);
                b.layernorm_backward(di.get(), dw.get(), db.get(), d.get(), xi.get(), wt.get(),
                                     m.f32(), r.f32(), s.N, s.C);
                return Outputs{get(b, di, n), get(b, dw, s.C), get(b, db, s.C)};
            },
            bf16);
    }
}

TEST_CASE("matmul forward and backward match the CPU", "[cuda][sanitize]") {
    const bool bf16 = GENERATE(false, true);
    struct Shape {
        int N, C, OC;
    };
    for (Shape s : shapes<Shape>(
             {Shape{1, 8, 8}, Shape{5, 37, 19}, Shape{64, 64, 256}, Shape{96, 768, 2304}}, 3)) {
        for (int variant = 0; variant < 3; variant++) {  // plain, + bias, + bias and GELU
            const bool has_bias = variant >= 1, gelu = variant == 2;
            INFO("N=" << s.N << " C=" << s.C << " OC=" << s.OC << " variant " << variant);
            Backend& g = gpu(bf16);
            const size_t ni = size_t(s.N) * s.C, no = size_t(s.N) * s.OC, nw = size_t(s.OC) * s.C;
            const auto inp = as_stored(g, random_values(ni, 1));
            const auto w = as_stored(g, random_values(nw, 2, 0.1f));
            const auto bias = as_stored(g, random_values(s.OC, 3));
            const auto dout = as_stored(g, random_values(no, 4));
            const auto dw0 = as_stored(g, random_values(nw, 5));
            const auto db0 = as_stored(g, random_values(s.OC, 6));
            compare_with_cpu(
                [&](Backend& b) {
                    DeviceBuffer x = put(b, inp), wt = put(b, w), bs = put(b, bias);
                    DeviceBuffer out = put(b, nans(no)), pre = put(b, nans(no));
                    DeviceBuffer d = put(b, dout), di = put(b, nans(ni));
                    DeviceBuffer dw = put(b, dw0), db = put(b, db0);
                    b.matmul_forward(out.get(), gelu ? pre.get() : nullptr, x.get(), wt.get(),
                                     has_bias ? bs.get() : nullptr, s.N, s.C, s.OC);
                    b.matmul_backward(di.get(), dw.get(), has_bias ? db.get() : nullptr, d.get(),
                                      x.get(), wt.get(), gelu ? pre.get() : nullptr, s.N, s.C,
                                      s.OC);
                    Outputs o{get(b, out, no), get(b, di, ni), get(b, dw, nw), get(b, d, no)};
                    if (has_bias) o.push_back(get(b, db, s.OC));
                    if (gelu) o.push_back(get(b, pre, no));
                    return o;
                },
                bf16);
        }
    }
}

namespace {

struct AttentionShape {
    int B, T, C, NH;
};

// out, the stats (log-sum-exp on the GPU) and dqkv of one attention forward and backward on b,
// every output filled with NaN first so that a value left unwritten shows.
Outputs attention_pass(Backend& b, AttentionShape s, const std::vector<float>& qkv,
                       const std::vector<float>& dout) {
    const size_t ns = b.attention_stats_floats(s.B, s.T, s.NH);
    DeviceBuffer x = put(b, qkv), out = put(b, nans(dout.size())), st = put_raw(b, nans(ns));
    DeviceBuffer d = put(b, dout), dx = put(b, nans(qkv.size()));
    b.attention_forward(out.get(), st.f32(), x.get(), s.B, s.T, s.C, s.NH);
    b.attention_backward(dx.get(), d.get(), x.get(), out.get(), st.f32(), s.B, s.T, s.C, s.NH);
    return Outputs{get(b, out, dout.size()), get_raw(b, st, ns), get(b, dx, qkv.size())};
}

}  // namespace

TEST_CASE("attention forward and backward match the CPU", "[cuda][sanitize][attention]") {
    const bool bf16 = GENERATE(false, true);
    using Shape = AttentionShape;
    // Head sizes 4, 12, 64, 100 (flash D = 32, 32, 64, 128) and 160 (beyond flash: plain).
    // cuDNN refuses T = 1 and head sizes that are not multiples of 8: flash runs those. Heads
    // over 128 are not asked of cuDNN (its limit there depends on the GPU and the version).
    for (AttentionPath path : attention_paths(bf16))
    for (Shape s : shapes<Shape>({Shape{1, 1, 8, 2}, Shape{2, 7, 36, 3}, Shape{2, 65, 128, 2},
                                  Shape{1, 33, 200, 2}, Shape{1, 20, 320, 2}, Shape{2, 97, 256, 2}},
                                 3)) {
        if (path == AttentionPath::cudnn && s.C / s.NH > 128) continue;
        INFO(path_name(path) << " B=" << s.B << " T=" << s.T << " C=" << s.C << " NH=" << s.NH);
        Backend& g = gpu(bf16, path);
        const size_t nq = size_t(s.B) * s.T * 3 * s.C, no = size_t(s.B) * s.T * s.C;
        const auto qkv = as_stored(g, random_values(nq, 1));
        const auto dout = as_stored(g, random_values(no, 2));
        compare_with_cpu(
            [&](Backend& b) {  // the stats differ in kind (probabilities on the CPU)
                const Outputs o = attention_pass(b, s, qkv, dout);
                return Outputs{o[0], o[2]};
            },
            bf16, 0.0, path);
    }
}

TEST_CASE("the attention paths agree: flash, plain cuBLAS and cuDNN", "[cuda][sanitize][attention]") {
    const bool bf16 = GENERATE(false, true);
    using Shape = AttentionShape;
    for (Shape s :
         shapes<Shape>({Shape{1, 1, 64, 1}, Shape{2, 45, 96, 3}, Shape{2, 130, 768, 12}}, 2)) {
        INFO("B=" << s.B << " T=" << s.T << " C=" << s.C << " NH=" << s.NH);
        const size_t nq = size_t(s.B) * s.T * 3 * s.C, no = size_t(s.B) * s.T * s.C;
        const size_t ns = size_t(s.B) * s.NH * s.T;
        Backend& flash = gpu(bf16, AttentionPath::flash);
        const auto qkv = as_stored(flash, random_values(nq, 1, 1.5f));
        const auto dout = as_stored(flash, random_values(no, 2));
        auto run = [&](Backend& b) {
            REQUIRE(b.attention_stats_floats(s.B, s.T, s.NH) == ns);
            return attention_pass(b, s, qkv, dout);
        };
        const Outputs a = run(flash);
        for (AttentionPath path : attention_paths(bf16)) {
            if (path == AttentionPath::flash) continue;
            const Outputs p = run(gpu(bf16, path));
            for (size_t k = 0; k < a.size(); k++) {
                INFO(path_name(path) << " output " << k << " (out, log-sum-exp, dqkv)");
                CHECK(rel_error(a[k], p[k]) < tolerance(bf16));
            }
        }
    }
}

TEST_CASE("shapes that cuDNN refuses run on flash, forward and backward, noted once each",
          "[cuda][sanitize][attention]") {
    if (!cuda_has_cudnn_attention()) {
        WARN("this build has no cuDNN attention: nothing to refuse");
        return;
    }
    using Shape = AttentionShape;
    // T = 1 (cuDNN: "s_q = s_kv = 1 is not supported"), also at B = 2, and a head size of 4
    // (cuDNN: "hidden_dim should be multiple of 8").
    const Shape refused[] = {{1, 1, 64, 1}, {2, 1, 128, 2}, {2, 9, 12, 3}};
    // A backend of its own: the shared one may have met these shapes, and noted them, already.
    CudaOptions options;
    options.attention = AttentionPath::cudnn;
    const std::unique_ptr<Backend> cudnn = make_cuda_backend(options);
    Backend& flash = gpu(true, AttentionPath::flash);
    for (const Shape& s : refused) {
        const std::string shape = "B=" + std::to_string(s.B) + " T=" + std::to_string(s.T) +
                                  " C=" + std::to_string(s.C) + " NH=" + std::to_string(s.NH);
        INFO(shape);
        const size_t nq = size_t(s.B) * s.T * 3 * s.C, no = size_t(s.B) * s.T * s.C;
        const auto qkv = as_stored(flash, random_values(nq, 1));
        const auto dout = as_stored(flash, random_values(no, 2));
        auto run = [&](Backend& b) { return attention_pass(b, s, qkv, dout); };
        Outputs first, second;
        const std::string err = stderr_of([&] {
            first = run(*cudnn);
            second = run(*cudnn);
        });
        INFO("stderr: " << err);
        const std::string note = "note: cuDNN refuses attention at " + shape + ": ";
        CHECK(occurrences(err, "note: ") == 1);
        REQUIRE(occurrences(err, note) == 1);
        const size_t reason = err.find(note) + note.size();
        const size_t end = err.find("; our kernels run this shape\n", reason);
        REQUIRE(end != std::string::npos);
        CHECK(end > reason);  // cuDNN's reason, not ""
        // Flash's kernels ran both directions: its bits, stats (log-sum-exp) included.
        const Outputs want = run(flash);
        for (size_t k = 0; k < want.size(); k++) {
            INFO("output " << k << " (out, log-sum-exp, dqkv)");
            CHECK(same_bits(first[k], want[k]));
            CHECK(same_bits(second[k], want[k]));
        }
    }
}

TEST_CASE("attention asked of cuDNN where it cannot run says why", "[cuda][attention]") {
    Backend& g = gpu(false, AttentionPath::cudnn);
    DeviceBuffer x(g, 3 * 64 * 4), out(g, 64 * 4), st(g, 4 * 4);
    CHECK_THROWS_WITH(g.attention_forward(out.get(), st.f32(), x.get(), 1, 4, 16, 1),
                      Catch::Contains("--attention cudnn") &&
                          Catch::Contains(cuda_has_cudnn_attention() ? "bf16" : "no cuDNN"));
}

TEST_CASE("residual add matches the CPU, also in place", "[cuda][sanitize]") {
    const bool bf16 = GENERATE(false, true);
    for (size_t n : shapes<size_t>({1, 7, 4099, 100000}, 3)) {
        INFO("n=" << n);
        Backend& g = gpu(bf16);
        const auto a = as_stored(g, random_values(n, 1)), c = as_stored(g, random_values(n, 2));
        compare_with_cpu(
            [&](Backend& b) {
                DeviceBuffer x = put(b, a), y = put(b, c), out = put(b, nans(n));
                b.residual_forward(out.get(), x.get(), y.get(), n);
                b.residual_forward(x.get(), x.get(), y.get(), n);
                return Outputs{get(b, out, n), get(b, x, n)};
            },
            bf16);
    }
}

TEST_CASE("fp32 gradient sums: accumulate and store match the CPU", "[cuda][sanitize]") {
    const bool bf16 = GENERATE(false, true);
    for (size_t n : shapes<size_t>({1, 7, 4099, 100000}, 3)) {
        INFO("n=" << n);
        Backend& g = gpu(bf16);
        const auto x = as_stored(g, random_values(n, 1)), y = as_stored(g, random_values(n, 2));
        const auto sum0 = random_values(n, 3);
        compare_with_cpu(
            [&](Backend& b) {
                DeviceBuffer a = put(b, x), c = put(b, y), sum = put_raw(b, sum0);
                DeviceBuffer out = put(b, nans(n));
                b.accumulate_f32(sum.f32(), a.get(), n);
                b.accumulate_f32(sum.f32(), c.get(), n);
                b.store_f32(out.get(), sum.f32(), n);
                return Outputs{get_raw(b, sum, n), get(b, out, n)};
            },
            bf16);
    }
}

TEST_CASE("softmax cross-entropy matches the CPU, padding zeroed", "[cuda][sanitize]") {
    const bool bf16 = GENERATE(false, true);
    struct Shape {
        int N, V, Vp;
    };
    for (Shape s : shapes<Shape>(
             {Shape{1, 5, 5}, Shape{7, 23, 64}, Shape{33, 1000, 1003}, Shape{9, 50257, 50304}},
             2)) {
        INFO("N=" << s.N << " V=" << s.V << " Vp=" << s.Vp);
        Backend& g = gpu(bf16);
        const size_t n = size_t(s.N) * s.Vp;
        const auto logits = as_stored(g, random_values(n, 1, 3.0f));
        const auto targets = random_ints(s.N, s.V, 2);
        compare_with_cpu(
            [&](Backend& b) {
                DeviceBuffer x = put(b, logits), t = put_raw(b, targets);
                DeviceBuffer losses = put_raw(b, nans(s.N));
                const double sum = b.softmax_cross_entropy(x.get(), losses.f32(), t.i32(), s.N, s.V,
                                                           s.Vp, 1.0f / s.N);
                return Outputs{get_raw(b, losses, s.N), get(b, x, n), {static_cast<float>(sum)}};
            },
            bf16);
    }
}

TEST_CASE("cross-entropy without gradient leaves the logits; bad targets throw",
          "[cuda][sanitize]") {
    const bool bf16 = GENERATE(false, true);
    Backend& g = gpu(bf16);
    const int N = 4, V = 10, Vp = 16;
    const auto logits = as_stored(g, random_values(N * Vp, 1));
    DeviceBuffer x = put(g, logits), losses = put_raw(g, nans(N));
    DeviceBuffer t = put_raw(g, std::vector<int32_t>{0, 3, 9, 2});
    g.softmax_cross_entropy(x.get(), losses.f32(), t.i32(), N, V, Vp, 0.0f);
    CHECK(same_bits(get(g, x, N * Vp), logits));
    DeviceBuffer bad = put_raw(g, std::vector<int32_t>{0, 3, 10, 2});
    CHECK_THROWS_AS(g.softmax_cross_entropy(x.get(), losses.f32(), bad.i32(), N, V, Vp, 0.0f),
                    Error);
}

TEST_CASE("sum of squares matches the CPU and repeats bitwise", "[cuda][sanitize]") {
    const bool bf16 = GENERATE(false, true);
    for (size_t n : shapes<size_t>({1, 13, 70001, 3000000}, 3)) {
        INFO("n=" << n);
        Backend& g = gpu(bf16);
        const auto a = as_stored(g, random_values(n, 1));
        compare_with_cpu(
            [&](Backend& b) {
                DeviceBuffer x = put(b, a);
                return Outputs{{static_cast<float>(b.sum_squares(x.get(), n))}};
            },
            bf16);
    }
}

TEST_CASE("AdamW matches the CPU; bf16 keeps an fp32 master", "[cuda][sanitize]") {
    const bool bf16 = GENERATE(false, true);
    for (size_t n : shapes<size_t>({1, 1000, 65537}, 2)) {
        INFO("n=" << n);
        Backend& g = gpu(bf16);
        const auto p0 = random_values(n, 1);
        const auto grads = as_stored(g, random_values(n, 2));
        const auto m0 = random_values(n, 3, 0.1f);
        auto v0 = random_values(n, 4, 0.1f);
        for (float& x : v0) x = x * x;
        compare_with_cpu(
            [&](Backend& b) {
                // The oracle's fp32 params are its master; in bf16 the GPU's are rounded.
                DeviceBuffer p = put(b, p0);
                DeviceBuffer master = put_raw(b, p0), gr = put(b, grads);
                DeviceBuffer m = put_raw(b, m0), v = put_raw(b, v0);
                float* mp = bf16 ? master.f32() : nullptr;
                for (int step = 1; step <= 2; step++)
                    b.adamw_update(p.get(), mp, gr.get(), m.f32(), v.f32(), n, 1e-3f, 0.9f, 0.95f,
                                   1e-8f, 0.1f, 0.5f, step, 0, 0);
                Outputs o{get(b, p, n), get_raw(b, m, n), get_raw(b, v, n)};
                if (bf16) o.push_back(get_raw(b, master, n));
                return o;
            },
            bf16);
    }
}

TEST_CASE("AdamW rounds each element from its index in the whole buffer", "[cuda]") {
    // One call over n elements, or two calls over its halves with their offsets: the same bits.
    // A kernel that ignored the offset would round the second half from another stream.
    Backend& g = gpu(true);
    const size_t n = 1000, half = 437;
    const auto p0 = random_values(n, 5), grads = as_stored(g, random_values(n, 6));
    auto run = [&](const std::vector<std::pair<size_t, size_t>>& pieces) {
        DeviceBuffer p = put(g, p0), master = put_raw(g, p0), gr = put(g, grads);
        DeviceBuffer m = put_raw(g, std::vector<float>(n)), v = put_raw(g, std::vector<float>(n));
        for (auto [at, count] : pieces)
            g.adamw_update(element(g, p.get(), at), master.f32() + at, element(g, gr.get(), at),
                           m.f32() + at, v.f32() + at, count, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.0f,
                           1.0f, 1, at, 7);
        return get(g, p, n);
    };
    CHECK(same_bits(run({{0, n}}), run({{0, half}, {half, n - half}})));
}

TEST_CASE("AdamW's rounding stream follows the seed: runs and islands differ", "[cuda]") {
    Backend& g = gpu(true);
    const size_t n = 4096;
    const auto p0 = random_values(n, 8), grads = as_stored(g, random_values(n, 9));
    auto run = [&](uint64_t seed) {
        DeviceBuffer p = put(g, p0), master = put_raw(g, p0), gr = put(g, grads);
        DeviceBuffer m = put_raw(g, std::vector<float>(n)), v = put_raw(g, std::vector<float>(n));
        g.adamw_update(p.get(), master.f32(), gr.get(), m.f32(), v.f32(), n, 1e-3f, 0.9f, 0.95f,
                       1e-8f, 0.0f, 1.0f, 1, 0, seed);
        return get(g, p, n);
    };
    const auto a = run(11), b = run(12);
    CHECK(same_bits(a, run(11)));
    size_t differ = 0;
    for (size_t i = 0; i < n; i++) differ += a[i] != b[i];
    // About half of the elements round the other way when the stream changes.
    CHECK(differ > n / 8);
}
