// Our outer optimizers (Nesterov, SGD, Adam) against torch.optim (SGD with nesterov=True, SGD,
// Adam) on the same outer gradients over several outer steps, through both step entry points.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <map>

#include "optim/outer.h"
#include "test/peers/peers.h"
#include "util/rng.h"
#include "util/safetensors.h"

using namespace diloco;
using namespace diloco::test;

namespace {

constexpr int64_t kParams = 4096, kSteps = 6;

std::vector<float> normal_vector(Rng& rng, int64_t n, double scale, const float* around) {
    std::vector<float> v(n);
    for (int64_t i = 0; i < n; i++) v[i] = float((around ? around[i] : 0.0) + scale * rng.normal());
    return v;
}

std::string config_json(const OuterOptConfig& c) {
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "{\"lr\": %.9g, \"momentum\": %.9g, \"beta2\": %.9g, \"eps\": %.9g, \"steps\": %d}",
                  c.lr, c.momentum, c.beta2, c.eps, int(kSteps));
    return buf;
}

// Our parameters after each outer step, stepping to the means or by the deltas.
std::vector<float> our_trajectory(const OuterOptConfig& config, const std::vector<float>& start,
                                  const std::vector<float>& steps_input, bool to_mean) {
    OuterOptimizer opt(config, kParams);
    std::vector<float> global = start, after;
    for (int64_t s = 0; s < kSteps; s++) {
        const float* input = steps_input.data() + s * kParams;
        const OuterRange range{0, size_t(kParams), int(s + 1)};
        if (to_mean) opt.step_to_mean(global.data(), input, range);
        else opt.step_by_delta(global.data(), input, range);
        after.insert(after.end(), global.begin(), global.end());
    }
    return after;
}

double max_abs_difference(const std::vector<float>& a, const std::vector<float>& b) {
    double worst = 0;
    for (size_t i = 0; i < a.size(); i++) worst = std::max(worst, std::fabs(double(a[i]) - b[i]));
    return worst;
}

}  // namespace

TEST_CASE("outer Nesterov, SGD and Adam give torch.optim's parameters to 1e-6", "[peers]") {
    const std::map<std::string, OuterOptConfig> configs = {
        {"nesterov", {OuterOpt::nesterov, 0.7f, 0.9f, 0.999f, 1e-8f}},
        {"sgd", {OuterOpt::sgd, 0.5f, 0.8f, 0.999f, 1e-8f}},
        {"adam", {OuterOpt::adam, 0.05f, 0.9f, 0.95f, 1e-8f}}};
    Rng rng(12, 0);
    const std::vector<float> start = normal_vector(rng, kParams, 1.0, nullptr);
    std::vector<float> means, deltas;
    for (int64_t s = 0; s < kSteps; s++) {
        const std::vector<float> mean = normal_vector(rng, kParams, 0.1, start.data());
        const std::vector<float> delta = normal_vector(rng, kParams, 0.1, nullptr);
        means.insert(means.end(), mean.begin(), mean.end());
        deltas.insert(deltas.end(), delta.begin(), delta.end());
    }
    std::string optimizers_json = "{";
    for (const auto& [name, config] : configs)
        optimizers_json += (optimizers_json.size() > 1 ? ", \"" : "\"") + name + "\": " +
                           config_json(config);
    optimizers_json += "}";

    TempDir dir;
    write_safetensors(dir.file("in.safetensors"),
                      {{"start", {kParams}, start.data()},
                       {"means", {kSteps, kParams}, means.data()},
                       {"deltas", {kSteps, kParams}, deltas.data()}},
                      {{"optimizers", optimizers_json}});
    const CliResult peer = run_peer_script(
        "outer_torch.py", dir.file("in.safetensors") + " " + dir.file("out.safetensors"));
    INFO(peer.err);
    REQUIRE(peer.exit_code == 0);
    const SafetensorsFile theirs = SafetensorsFile::read(dir.file("out.safetensors"));
    for (const auto& [name, config] : configs) {
        for (bool to_mean : {true, false}) {
            const std::string tensor = name + (to_mean ? ".to_mean" : ".by_delta");
            std::vector<float> torch_params(kSteps * kParams);
            theirs.read_f32(tensor, {kSteps, kParams}, torch_params.data());
            const double worst = max_abs_difference(
                our_trajectory(config, start, to_mean ? means : deltas, to_mean), torch_params);
            std::printf("%s: max |ours - torch| over %d steps = %.3g\n", tensor.c_str(),
                        int(kSteps), worst);
            CHECK(worst <= 1e-6);
        }
    }
}
