// The DiLoCo outer helpers on the GPU against plain host arithmetic, and the reductions the
// design relies on: lr = 1, mu = 0 turns the outer step into taking the islands' parameters.
#include <catch2/catch.hpp>

#include "kernels/cuda/outer.cuh"
#include "test/cuda/oracle.h"

using namespace diloco;
using namespace diloco::test;

TEST_CASE("outer gradient and Nesterov step match host arithmetic", "[cuda][sanitize]") {
    Backend& g = gpu(false);
    const size_t n = 10007;
    const auto global = random_values(n, 1), local = random_values(n, 2),
               mom = random_values(n, 3, 0.1f);
    DeviceBuffer gl = put_raw(g, global), lo = put_raw(g, local), m = put_raw(g, mom);
    DeviceBuffer delta = put_raw(g, nans(n));
    cudaStream_t s = cuda_stream(g);
    cuda::outer_gradient(delta.f32(), gl.f32(), lo.f32(), n, s);
    const bool nesterov = GENERATE(true, false);
    const float lr = 0.7f, mu = 0.9f;
    cuda::outer_momentum_step(gl.f32(), m.f32(), delta.f32(), n, lr, mu, nesterov, s);
    std::vector<float> want_d(n), want_m(n), want_g(n);
    for (size_t i = 0; i < n; i++) {
        want_d[i] = global[i] - local[i];
        want_m[i] = mu * mom[i] + want_d[i];
        want_g[i] = global[i] - lr * (nesterov ? want_d[i] + mu * want_m[i] : want_m[i]);
    }
    CHECK(rel_error(get_raw(g, delta, n), want_d) < 1e-6);
    CHECK(rel_error(get_raw(g, m, n), want_m) < 1e-6);
    CHECK(rel_error(get_raw(g, gl, n), want_g) < 1e-6);
}

TEST_CASE("outer step with lr 1 and no momentum lands on the local parameters", "[cuda]") {
    Backend& g = gpu(false);
    const size_t n = 999;
    const auto global = random_values(n, 4), local = random_values(n, 5);
    DeviceBuffer gl = put_raw(g, global), lo = put_raw(g, local), delta = put_raw(g, nans(n));
    DeviceBuffer m = put_raw(g, std::vector<float>(n, 0.0f));
    cudaStream_t s = cuda_stream(g);
    cuda::outer_gradient(delta.f32(), gl.f32(), lo.f32(), n, s);
    cuda::outer_momentum_step(gl.f32(), m.f32(), delta.f32(), n, 1.0f, 0.0f, true, s);
    CHECK(rel_error(get_raw(g, gl, n), local) < 1e-6);
}
