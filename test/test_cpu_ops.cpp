// Op-level tests of the CPU backend: each backward against central differences in double, float
// against double, backend.h's += / overwrite rules, causality, thread independence, AdamW by hand.
#include <omp.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <iomanip>
#include <limits>
#include <string>
#include <vector>

#include "kernels/backend.h"
#include "kernels/cpu/adamw.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/crossentropy.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/gelu.h"
#include "kernels/cpu/layernorm.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/norm.h"
#include "kernels/cpu/residual.h"
#include "kernels/cpu/simd.h"
#include "util/error.h"
#include "util/rng.h"

using namespace diloco;
using Vec = std::vector<double>;

namespace {

// Central differences with step h have truncation error ~h^2 |L'''| ~ 1e-12 and rounding error
// ~ulp(L) / h ~ 1e-15 / 1e-6 = 1e-9 in double (L sums at most a few hundred O(1) terms), so a
// correct gradient agrees to ~1e-9 absolute. We allow 1e-6 relative + 1e-7 absolute: 100x above
// that noise, and far below the O(1) relative errors a wrong formula or index gives.
constexpr double kStep = 1e-6, kGradRtol = 1e-6, kGradAtol = 1e-7;
// fp32 rounds each operation to 6e-8 relative; our sums have at most a few dozen terms, so float
// and double agree to ~1e-6 of the tensor's scale. 1e-5 leaves a margin of ten.
constexpr double kFloatRtol = 1e-5;

// Normal values rounded to float, so that float and double runs see identical inputs.
Vec randn(size_t n, uint64_t seed) {
    Rng rng(seed, 0);
    Vec x(n);
    for (double& v : x) v = static_cast<float>(rng.normal());
    return x;
}

template <typename Real>
std::vector<Real> cast(const Vec& x) {
    return std::vector<Real>(x.begin(), x.end());
}

template <typename Real>
Vec widen(const std::vector<Real>& x) {
    return Vec(x.begin(), x.end());
}

template <typename Real>
std::vector<Real> poison(size_t n) {
    return std::vector<Real>(n, std::numeric_limits<Real>::quiet_NaN());
}

double dot(const Vec& a, const Vec& b) {
    double s = 0;
    for (size_t i = 0; i < a.size(); i++) s += a[i] * b[i];
    return s;
}

double max_abs(const Vec& x) {
    double m = 0;
    for (double v : x) m = std::max(m, std::abs(v));
    return m;
}

// Checks |got - want| <= rtol |want| + atol everywhere and reports the worst element (NaN is
// the worst of all: it is what an overwritten-but-not-written output holds).
void check_close(const Vec& got, const Vec& want, double rtol, double atol,
                 const std::string& what) {
    REQUIRE(got.size() == want.size());
    size_t worst = 0;
    double worst_excess = -std::numeric_limits<double>::infinity();
    for (size_t i = 0; i < got.size(); i++) {
        double excess = std::abs(got[i] - want[i]) - (rtol * std::abs(want[i]) + atol);
        if (std::isnan(excess)) excess = std::numeric_limits<double>::infinity();
        if (excess > worst_excess) worst_excess = excess, worst = i;
    }
    if (got.empty()) return;
    INFO(what << "[" << worst << "] of " << got.size() << ": got " << std::setprecision(12)
              << got[worst] << ", want " << want[worst]);
    CHECK(worst_excess <= 0);
}

// An op under test provides inputs(seed) -> {differentiable inputs..., R} and
// run<Real>(inputs, passes) -> {output, gradient of each differentiable input}, where the
// backward runs `passes` times on the same gradient buffers with dout = R, and accumulates[i]
// says whether gradient i adds up over passes (+=) or is overwritten.

// Gradients of L = sum(output * R) against central differences of the double forward.
template <typename Op>
void check_gradients(const Op& op, std::vector<Vec> in) {
    const std::vector<Vec> analytic = op.template run<double>(in);
    const Vec R = in.back();
    for (size_t a = 0; a + 1 < in.size(); a++) {
        Vec fd(in[a].size());
        for (size_t j = 0; j < in[a].size(); j++) {
            const double x = in[a][j];
            in[a][j] = x + kStep;
            const double up = dot(op.template run<double>(in)[0], R);
            in[a][j] = x - kStep;
            const double down = dot(op.template run<double>(in)[0], R);
            in[a][j] = x;
            fd[j] = (up - down) / (2 * kStep);
        }
        check_close(analytic[a + 1], fd, kGradRtol, kGradAtol,
                    "gradient of input " + std::to_string(a));
    }
}

// Two backward passes give twice the accumulated gradients and the same overwritten ones.
template <typename Op>
void check_accumulation(const Op& op, const std::vector<Vec>& in) {
    const std::vector<Vec> once = op.template run<double>(in, 1);
    const std::vector<Vec> twice = op.template run<double>(in, 2);
    for (size_t g = 0; g < op.accumulates.size(); g++) {
        Vec want = once[g + 1];
        if (op.accumulates[g]) {
            for (double& w : want) w *= 2;
        }
        check_close(twice[g + 1], want, 1e-12, 1e-14,
                    (op.accumulates[g] ? "accumulated gradient " : "overwritten gradient ") +
                        std::to_string(g));
    }
}

// Every output and gradient of the float instantiation, relative to the tensor's scale.
template <typename Op>
void check_float_matches_double(const Op& op, const std::vector<Vec>& in) {
    const std::vector<Vec> d = op.template run<double>(in), f = op.template run<float>(in);
    for (size_t k = 0; k < d.size(); k++) {
        check_close(f[k], d[k], kFloatRtol, kFloatRtol * max_abs(d[k]),
                    "float vs double, result " + std::to_string(k));
    }
}

template <typename Op>
void check_op(const Op& op, uint64_t seed) {
    const std::vector<Vec> in = op.inputs(seed);
    check_gradients(op, in);
    check_accumulation(op, in);
    check_float_matches_double(op, in);
}

// Bitwise equality of every result with 1 and with 3 threads.
template <typename Op>
void check_thread_independence(const Op& op, uint64_t seed) {
    const std::vector<Vec> in = op.inputs(seed);
    const int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    const std::vector<Vec> one = op.template run<float>(in);
    omp_set_num_threads(3);
    const std::vector<Vec> three = op.template run<float>(in);
    omp_set_num_threads(saved);
    for (size_t k = 0; k < one.size(); k++) {
        INFO("result " << k);
        CHECK(one[k] == three[k]);
    }
}

struct EmbeddingOp {
    int B, T, C, V;
    std::vector<int32_t> tokens;  // B*T ids in [0, V), with repeats
    std::vector<bool> accumulates{true, true};

    std::vector<Vec> inputs(uint64_t seed) const {
        return {randn(size_t(V) * C, seed), randn(size_t(T) * C, seed + 1),
                randn(size_t(B) * T * C, seed + 2)};
    }
    template <typename Real>
    std::vector<Vec> run(const std::vector<Vec>& in, int passes = 1) const {
        auto wte = cast<Real>(in[0]), wpe = cast<Real>(in[1]), dout = cast<Real>(in[2]);
        std::vector<Real> out(dout.size()), dwte(wte.size()), dwpe(wpe.size());
        cpu::embedding_forward(out.data(), tokens.data(), wte.data(), wpe.data(), B, T, C);
        for (int p = 0; p < passes; p++) {
            cpu::embedding_backward(dwte.data(), dwpe.data(), dout.data(), tokens.data(), B, T,
                                    C);
        }
        return {widen(out), widen(dwte), widen(dwpe)};
    }
};

struct LayerNormOp {
    int N, C;
    std::vector<bool> accumulates{true, true, true};  // dinp too: it is the residual's gradient

    std::vector<Vec> inputs(uint64_t seed) const {
        return {randn(size_t(N) * C, seed), randn(C, seed + 1), randn(C, seed + 2),
                randn(size_t(N) * C, seed + 3)};
    }
    template <typename Real>
    std::vector<Vec> run(const std::vector<Vec>& in, int passes = 1) const {
        auto inp = cast<Real>(in[0]), w = cast<Real>(in[1]), b = cast<Real>(in[2]),
             dout = cast<Real>(in[3]);
        std::vector<Real> out(inp.size()), mean(N), rstd(N), dinp(inp.size()), dw(C), db(C);
        cpu::layernorm_forward(out.data(), mean.data(), rstd.data(), inp.data(), w.data(),
                               b.data(), N, C);
        for (int p = 0; p < passes; p++) {
            cpu::layernorm_backward(dinp.data(), dw.data(), db.data(), dout.data(), inp.data(),
                                    w.data(), mean.data(), rstd.data(), N, C);
        }
        return {widen(out), widen(dinp), widen(dw), widen(db)};
    }
};

// A plain GELU; the backward scales a fresh copy of dout each pass, so it counts as overwritten.
struct GeluOp {
    int n;
    std::vector<bool> accumulates{false};

    std::vector<Vec> inputs(uint64_t seed) const {
        Vec x = randn(n, seed);
        for (double& v : x) v *= 3;  // reach both tails and the bend
        return {x, randn(n, seed + 1)};
    }
    template <typename Real>
    std::vector<Vec> run(const std::vector<Vec>& in, int passes = 1) const {
        auto inp = cast<Real>(in[0]);
        std::vector<Real> out(n), dinp(n);
        cpu::gelu_forward(out.data(), inp.data(), n);
        for (int p = 0; p < passes; p++) {
            dinp = cast<Real>(in[1]);
            cpu::gelu_backward(dinp.data(), inp.data(), n);
        }
        return {widen(out), widen(dinp)};
    }
};

struct MatmulOp {
    int N, C, OC;
    bool bias, gelu;
    std::vector<bool> accumulates{false, true, true};

    // inp, weight, bias (empty without one), R.
    std::vector<Vec> inputs(uint64_t seed) const {
        return {randn(size_t(N) * C, seed), randn(size_t(OC) * C, seed + 1),
                bias ? randn(OC, seed + 2) : Vec{}, randn(size_t(N) * OC, seed + 3)};
    }
    template <typename Real>
    std::vector<Vec> run(const std::vector<Vec>& in, int passes = 1) const {
        auto inp = cast<Real>(in[0]), w = cast<Real>(in[1]), b = cast<Real>(in[2]);
        std::vector<Real> out(size_t(N) * OC), pre(gelu ? out.size() : 0);
        std::vector<Real> dinp = poison<Real>(inp.size()), dw(w.size()), db(b.size());
        Real* pre_gelu = gelu ? pre.data() : nullptr;
        cpu::matmul_forward(out.data(), pre_gelu, inp.data(), w.data(), bias ? b.data() : nullptr,
                            N, C, OC);
        for (int p = 0; p < passes; p++) {
            auto dout = cast<Real>(in[3]);  // the GELU backward scales it in place
            cpu::matmul_backward(dinp.data(), dw.data(), bias ? db.data() : nullptr, dout.data(),
                                 inp.data(), w.data(), pre_gelu, N, C, OC);
        }
        return {widen(out), widen(dinp), widen(dw), widen(db)};
    }
};

struct AttentionOp {
    int B, T, C, NH;
    std::vector<bool> accumulates{false};

    std::vector<Vec> inputs(uint64_t seed) const {
        return {randn(size_t(B) * T * 3 * C, seed), randn(size_t(B) * T * C, seed + 1)};
    }
    template <typename Real>
    std::vector<Vec> run(const std::vector<Vec>& in, int passes = 1) const {
        auto qkv = cast<Real>(in[0]), dout = cast<Real>(in[1]);
        std::vector<Real> out(dout.size()), att(size_t(B) * NH * T * T);
        std::vector<Real> dqkv = poison<Real>(qkv.size());
        cpu::attention_forward(out.data(), att.data(), qkv.data(), B, T, C, NH);
        for (int p = 0; p < passes; p++) {
            cpu::attention_backward(dqkv.data(), dout.data(), qkv.data(), att.data(), B, T, C,
                                    NH);
        }
        return {widen(out), widen(dqkv), widen(att)};
    }
};

}  // namespace

TEST_CASE("cpu embedding: gradients, accumulation, float vs double", "[cpu]") {
    check_op(EmbeddingOp{2, 5, 7, 4, {0, 3, 3, 1, 0, 2, 3, 0, 0, 1}}, 10);
    check_op(EmbeddingOp{1, 1, 3, 2, {1}}, 11);
}

TEST_CASE("cpu layernorm: gradients, accumulation, float vs double", "[cpu]") {
    check_op(LayerNormOp{10, 7}, 20);
    check_op(LayerNormOp{1, 9}, 21);
}

TEST_CASE("cpu exp_approx: 2 ulp on its range, clamped outside it, NaN stays NaN", "[cpu]") {
    for (float x = -87.0f; x <= 88.0f; x += 0.01953125f) {
        const double exact = std::exp(static_cast<double>(x));
        const double ulp = std::nextafter(static_cast<float>(exact), INFINITY) - static_cast<float>(exact);
        INFO("x = " << x);
        REQUIRE(std::fabs(cpu::exp_approx(x) - exact) <= 2 * ulp);
    }
    const float inf = std::numeric_limits<float>::infinity();
    for (float x : {-inf, -1000.0f, -88.5f}) CHECK(cpu::exp_approx(x) == cpu::exp_approx(-87.0f));
    for (float x : {inf, 1000.0f, 88.5f}) CHECK(cpu::exp_approx(x) == cpu::exp_approx(88.0f));
    CHECK(std::isfinite(cpu::exp_approx(inf)));
    // A diverging run feeds NaN logits to the softmax: it must come out NaN, so the loss check
    // sees it, and its conversion to an exponent must stay defined (UBSan found it was not).
    CHECK(std::isnan(cpu::exp_approx(std::numeric_limits<float>::quiet_NaN())));
    CHECK(std::isnan(cpu::exp_approx(-std::numeric_limits<float>::quiet_NaN())));
}

TEST_CASE("cpu gelu: derivative, float vs double", "[cpu]") {
    check_op(GeluOp{41}, 30);
}

TEST_CASE("cpu matmul: gradients with and without bias, fused bias + GELU", "[cpu]") {
    check_op(MatmulOp{10, 7, 9, true, false}, 40);
    check_op(MatmulOp{10, 7, 9, false, false}, 41);
    check_op(MatmulOp{1, 5, 3, true, false}, 42);
    check_op(MatmulOp{10, 7, 9, true, true}, 43);
    check_op(MatmulOp{3, 4, 1, false, true}, 44);
}

TEST_CASE("cpu matmul: the GELU epilogue is gelu of the biased product", "[cpu]") {
    const MatmulOp plain{6, 5, 7, true, false};
    const std::vector<Vec> in = plain.inputs(45);
    const Vec pre = plain.run<double>(in)[0];
    const Vec fused = MatmulOp{6, 5, 7, true, true}.run<double>(in)[0];
    Vec want(pre.size());
    cpu::gelu_forward(want.data(), pre.data(), pre.size());
    check_close(fused, want, 1e-15, 0, "fused GELU output");
}

TEST_CASE("cpu attention: gradients, overwrite, float vs double", "[cpu]") {
    check_op(AttentionOp{2, 5, 9, 3}, 50);
    check_op(AttentionOp{2, 5, 7, 1}, 51);
    check_op(AttentionOp{1, 1, 6, 2}, 52);
}

TEST_CASE("cpu attention: causal, with a causal softmax in the stats", "[cpu]") {
    const int B = 2, T = 6, C = 9, NH = 3;
    const AttentionOp op{B, T, C, NH};
    std::vector<Vec> in = op.inputs(53);
    const std::vector<Vec> before = op.run<double>(in);
    const int b = 1, t0 = 3;  // change every q, k, v channel of one later token
    for (int i = 0; i < 3 * C; i++) in[0][(size_t(b) * T + t0) * 3 * C + i] += 0.5;
    const std::vector<Vec> after = op.run<double>(in);
    for (int bb = 0; bb < B; bb++) {
        for (int t = 0; t < T; t++) {
            const bool may_change = bb == b && t >= t0;
            for (int i = 0; i < C; i++) {
                const size_t at = (size_t(bb) * T + t) * C + i;
                if (!may_change) REQUIRE(after[0][at] == before[0][at]);
            }
        }
    }
    CHECK(after[0][(size_t(b) * T + t0) * C] != before[0][(size_t(b) * T + t0) * C]);
    const Vec& att = before[2];
    for (size_t row = 0; row < size_t(B) * NH * T; row++) {
        const int t = int(row % T);
        double sum = 0;
        for (int t2 = 0; t2 < T; t2++) {
            if (t2 > t) REQUIRE(att[row * T + t2] == 0);
            sum += att[row * T + t2];
        }
        REQUIRE(sum == Approx(1).epsilon(1e-14));
    }
}

TEST_CASE("cpu residual: sum, in place", "[cpu]") {
    Vec a = randn(37, 60), b = randn(37, 61), out(37);
    cpu::residual_forward(out.data(), a.data(), b.data(), a.size());
    for (size_t i = 0; i < a.size(); i++) REQUIRE(out[i] == a[i] + b[i]);
    cpu::residual_forward(a.data(), a.data(), b.data(), a.size());
    CHECK(a == out);
}

TEST_CASE("cpu residual + layernorm fused equals the two ops", "[cpu]") {
    auto backend = make_cpu_backend();
    const int N = 5, C = 7;
    const auto x1 = cast<float>(randn(N * C, 70)), x2 = cast<float>(randn(N * C, 71));
    const auto w = cast<float>(randn(C, 72)), b = cast<float>(randn(C, 73));
    std::vector<float> res(N * C), out(N * C), mean(N), rstd(N);
    backend->residual_layernorm_forward(res.data(), out.data(), mean.data(), rstd.data(),
                                        x1.data(), x2.data(), w.data(), b.data(), N, C);
    std::vector<float> res2(N * C), out2(N * C), mean2(N), rstd2(N);
    backend->residual_forward(res2.data(), x1.data(), x2.data(), res2.size());
    backend->layernorm_forward(out2.data(), mean2.data(), rstd2.data(), res2.data(), w.data(),
                               b.data(), N, C);
    CHECK(res == res2);
    CHECK(out == out2);
    CHECK(mean == mean2);
    CHECK(rstd == rstd2);
}

TEST_CASE("cpu softmax cross-entropy: loss is -log softmax, padding is ignored", "[cpu]") {
    const int N = 4, V = 7, Vp = 9;
    Vec logits = randn(size_t(N) * Vp, 80);
    for (int n = 0; n < N; n++) {
        for (int i = V; i < Vp; i++) logits[size_t(n) * Vp + i] = 50;  // would dominate if read
    }
    for (int i = 0; i < V; i++) {  // exp overflows without the max; kept representable in fp32
        logits[3 * Vp + i] = static_cast<float>(logits[3 * Vp + i] + 1000);
    }
    const std::vector<int32_t> targets{0, 6, 3, 2};
    Vec losses(N), work = logits;
    const double sum = cpu::softmax_cross_entropy(work.data(), losses.data(), targets.data(), N, V,
                                                  Vp, 0.0);
    CHECK(work == logits);  // grad_scale 0: the logits stay
    double want_sum = 0;
    for (int n = 0; n < N; n++) {
        const double* x = logits.data() + size_t(n) * Vp;
        const double shift = n == 3 ? 1000 : 0;  // undo the offset to stay in range here
        double z = 0;
        for (int i = 0; i < V; i++) z += std::exp(x[i] - shift);
        const double want = std::log(z) - (x[targets[n]] - shift);
        CHECK(losses[n] == Approx(want).epsilon(1e-13));
        want_sum += want;
    }
    CHECK(sum == Approx(want_sum).epsilon(1e-13));

    // The float instantiation and its double-accumulated sum.
    auto flogits = cast<float>(logits);
    std::vector<float> flosses(N);
    const double fsum = cpu::softmax_cross_entropy(flogits.data(), flosses.data(), targets.data(),
                                                   N, V, Vp, 0.0f);
    for (int n = 0; n < N; n++) CHECK(flosses[n] == Approx(losses[n]).epsilon(kFloatRtol));
    CHECK(fsum == Approx(sum).epsilon(kFloatRtol));
}

TEST_CASE("cpu softmax cross-entropy: gradient, grad_scale, zero padding", "[cpu]") {
    const int N = 3, V = 5, Vp = 8;
    const std::vector<int32_t> targets{4, 0, 2};
    Vec logits = randn(size_t(N) * Vp, 90);
    auto loss_sum = [&](Vec x) {
        Vec losses(N);
        return cpu::softmax_cross_entropy(x.data(), losses.data(), targets.data(), N, V, Vp, 0.0);
    };
    const double scale = 0.37;
    Vec grad = logits, losses(N);
    cpu::softmax_cross_entropy(grad.data(), losses.data(), targets.data(), N, V, Vp, scale);
    Vec fd(logits.size());
    for (size_t j = 0; j < logits.size(); j++) {
        Vec up = logits, down = logits;
        up[j] += kStep;
        down[j] -= kStep;
        fd[j] = scale * (loss_sum(up) - loss_sum(down)) / (2 * kStep);
    }
    check_close(grad, fd, kGradRtol, kGradAtol, "scaled dlogits");
    for (int n = 0; n < N; n++) {
        for (int i = V; i < Vp; i++) REQUIRE(grad[size_t(n) * Vp + i] == 0);
    }

    Vec grad1 = logits;  // grad_scale 1 gives softmax - onehot, so the above is 0.37 of it
    cpu::softmax_cross_entropy(grad1.data(), losses.data(), targets.data(), N, V, Vp, 1.0);
    for (double& g : grad1) g *= scale;
    check_close(grad, grad1, 1e-14, 1e-16, "grad_scale");

    auto fgrad = cast<float>(logits);
    std::vector<float> flosses(N);
    cpu::softmax_cross_entropy(fgrad.data(), flosses.data(), targets.data(), N, V, Vp,
                               static_cast<float>(scale));
    check_close(widen(fgrad), grad, kFloatRtol, kFloatRtol * max_abs(grad), "float dlogits");
}

TEST_CASE("cpu softmax cross-entropy rejects targets outside the vocabulary", "[cpu]") {
    auto backend = make_cpu_backend();
    const int N = 2, V = 5, Vp = 8;
    const auto logits = cast<float>(randn(N * Vp, 100));
    for (int32_t bad : {5, -1, 1 << 30}) {
        auto work = logits;
        std::vector<float> losses(N);
        const std::vector<int32_t> targets{1, bad};
        REQUIRE_THROWS_AS(backend->softmax_cross_entropy(work.data(), losses.data(),
                                                         targets.data(), N, V, Vp, 1.0f),
                          Error);
        REQUIRE_THROWS_WITH(backend->softmax_cross_entropy(work.data(), losses.data(),
                                                           targets.data(), N, V, Vp, 1.0f),
                            Catch::Contains("target id " + std::to_string(bad)));
        CHECK(work == logits);  // checked before anything is written
    }
}

TEST_CASE("cpu sum_squares: ragged chunks, double accumulation", "[cpu]") {
    const size_t n = 3 * 4096 + 17;
    const Vec x = randn(n, 110);
    long double want = 0;
    for (double v : x) want += static_cast<long double>(v) * v;
    CHECK(cpu::sum_squares(x.data(), n) == Approx(double(want)).epsilon(1e-14));
    const auto xf = cast<float>(x);  // exact: the values are floats already
    CHECK(cpu::sum_squares(xf.data(), n) == Approx(double(want)).epsilon(1e-14));
    auto backend = make_cpu_backend();
    CHECK(backend->sum_squares(xf.data(), n) == cpu::sum_squares(xf.data(), n));
    CHECK(cpu::sum_squares(xf.data(), 0) == 0);
}

TEST_CASE("cpu ops give the same bits with 1 and 3 threads", "[cpu]") {
    // Shapes span several channel and column blocks, so the threads really split the work.
    std::vector<int32_t> tokens(3 * 17);
    for (size_t i = 0; i < tokens.size(); i++) tokens[i] = int32_t(i * 7 % 5);
    check_thread_independence(EmbeddingOp{3, 17, 70, 5, tokens}, 120);
    check_thread_independence(LayerNormOp{51, 70}, 121);
    check_thread_independence(MatmulOp{33, 70, 65, true, true}, 122);
    check_thread_independence(AttentionOp{2, 17, 24, 3}, 123);
    const auto x = cast<float>(randn(5 * 4096 + 3, 124));
    const int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    const double one = cpu::sum_squares(x.data(), x.size());
    omp_set_num_threads(3);
    const double three = cpu::sum_squares(x.data(), x.size());
    omp_set_num_threads(saved);
    CHECK(one == three);
}

TEST_CASE("cpu AdamW: two steps by hand, with weight decay and grad_scale", "[cpu]") {
    const double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.1, scale = 0.5;
    const Vec p0{0.5, -1.0, 2.0};
    const Vec g[2] = {{0.1, -0.2, 0.0}, {-0.3, 0.05, 0.4}};  // element 2 starts with zero grad
    // The formula of backend.h, element by element.
    Vec want = p0, m(3, 0.0), v(3, 0.0);
    for (int step = 1; step <= 2; step++) {
        for (int i = 0; i < 3; i++) {
            const double gi = g[step - 1][i] * scale;
            m[i] = b1 * m[i] + (1 - b1) * gi;
            v[i] = b2 * v[i] + (1 - b2) * gi * gi;
            const double mhat = m[i] / (1 - std::pow(b1, step));
            const double vhat = v[i] / (1 - std::pow(b2, step));
            want[i] -= lr * (mhat / (std::sqrt(vhat) + eps) + wd * want[i]);
        }
    }

    Vec p = p0, dm(3, 0.0), dv(3, 0.0);
    for (int step = 1; step <= 2; step++) {
        cpu::adamw_update(p.data(), g[step - 1].data(), dm.data(), dv.data(), 3, lr, b1, b2, eps,
                          wd, scale, step);
    }
    check_close(p, want, 1e-14, 0, "double AdamW");
    check_close(dm, m, 1e-14, 0, "first moment");
    check_close(dv, v, 1e-14, 0, "second moment");

    // Through the backend, in fp32: params as their own master, and with a separate master.
    auto backend = make_cpu_backend();
    for (bool separate_master : {false, true}) {
        auto params = cast<float>(p0), master = cast<float>(p0);
        std::vector<float> fm(3), fv(3);
        for (int step = 1; step <= 2; step++) {
            const auto grads = cast<float>(g[step - 1]);
            backend->adamw_update(params.data(), separate_master ? master.data() : nullptr,
                                  grads.data(), fm.data(), fv.data(), 3, float(lr), float(b1),
                                  float(b2), float(eps), float(wd), float(scale), step, 0, 0);
        }
        INFO("separate master: " << separate_master);
        check_close(widen(params), want, 1e-6, 0, "fp32 AdamW");
        if (separate_master) CHECK(params == master);
    }
}

TEST_CASE("cpu backend: memory, copies, sizes", "[cpu]") {
    auto backend = make_cpu_backend();
    CHECK(backend->name() == "cpu");
    CHECK(backend->storage_bytes() == 4);
    CHECK(backend->attention_stats_floats(2, 5, 3) == 150);
    DeviceBuffer buf(*backend, 100 * sizeof(float));
    CHECK(reinterpret_cast<uintptr_t>(buf.get()) % 64 == 0);
    std::vector<float> host(100, 1.0f);
    backend->download(host.data(), buf.get(), 100);
    CHECK(host == std::vector<float>(100, 0.0f));  // alloc zeroes
    for (int i = 0; i < 100; i++) host[i] = float(i) * 0.5f;
    backend->upload(buf.get(), host.data(), 100);
    std::vector<float> back(100);
    backend->download(back.data(), buf.get(), 100);
    CHECK(back == host);
    backend->zero(element(*backend, buf.get(), 10), 5 * sizeof(float));
    backend->download(back.data(), buf.get(), 100);
    CHECK(back[9] == 4.5f);
    CHECK(back[10] == 0.0f);
    CHECK(back[14] == 0.0f);
    CHECK(back[15] == 7.5f);
    DeviceBuffer empty(*backend, 0);
    CHECK(empty.get() != nullptr);
    REQUIRE_THROWS_AS(backend->alloc(SIZE_MAX / 2), Error);
    REQUIRE_THROWS_WITH(backend->alloc(SIZE_MAX - 1),
                        Catch::Contains(std::to_string(SIZE_MAX - 1)));
}
