// Tests of the `diloco plan` cost model: utilisation on hand-computed rounds, the bandwidth
// formula solved and plugged back, the order of the methods, and the command line.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "comm/plan.h"
#include "model/config.h"
#include "model/layout.h"
#include "test/helpers.h"
#include "util/error.h"

using namespace diloco;
using diloco::test::run_diloco;

namespace {

constexpr double kTargets[] = {0.5, 0.8, 0.9, 0.95, 0.99};
constexpr Method kMethods[] = {Method::ddp, Method::diloco, Method::streaming};

// 1M parameters, 100 ms steps, 4 islands (each sends 1.5x what it reduces), H = 10, F = 2.
PlanInput small_plan() {
    PlanInput in;
    in.params = 1'000'000;
    in.step_seconds = 0.1;
    in.islands = 4;
    in.inner_steps = 10;
    in.fragments = 2;
    in.overlap = 1;
    in.link = WanLink{1, 10};
    return in;
}

void check_one_line_error(const test::CliResult& r, const std::string& needle) {
    INFO("stderr: " << r.err);
    CHECK(r.exit_code != 0);
    CHECK(r.err.find(needle) != std::string::npos);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
}

}  // namespace

TEST_CASE("plan utilisation on hand-computed rounds", "[plan]") {
    PlanInput in = small_plan();
    // ddp: 6 MB a step, 48 ms at 1 Gbit/s, plus 2 x 10 ms of latency, every step.
    RoundCost ddp = round_cost(in, Method::ddp);
    CHECK(ddp.bytes == Approx(6e6));
    CHECK(round_seconds(ddp, 1) == Approx(1.0 + 10 * 0.068));
    CHECK(utilisation(ddp, 1) == Approx(1 / 1.68));
    // DiLoCo: the same 6 MB once per 10 steps, with 3 latencies.
    CHECK(utilisation(round_cost(in, Method::diloco), 1) == Approx(1 / 1.078));
    // Streaming: 3 MB per fragment, 24 + 30 ms, hidden behind one 100 ms step.
    CHECK(utilisation(round_cost(in, Method::streaming), 1) == 1);
    in.overlap = 0;
    CHECK(utilisation(round_cost(in, Method::streaming), 1) == Approx(1 / 1.108));
    // int4: 4 bytes per 1024-value block plus half a byte per value.
    in.codec = Codec::int4;
    CHECK(round_cost(in, Method::diloco).bytes == Approx(1.5 * (4 * 977 + 500'000)));
    // Unlimited bandwidth leaves the latency.
    CHECK(round_seconds(ddp, 0) == Approx(1.0 + 10 * 0.02));
}

TEST_CASE("plan bandwidth needed on hand-computed rounds", "[plan]") {
    PlanInput in = small_plan();
    // 50% of a 1 s round allows 1 s of waiting, 30 ms of it latency, for 48 Mbit.
    CHECK(gbps_needed(round_cost(in, Method::diloco), 0.5) == Approx(0.048 / 0.97));
    in.link.latency_ms = 1000;
    CHECK(std::isinf(gbps_needed(round_cost(in, Method::diloco), 0.5)));
    CHECK_THROWS_AS(gbps_needed(round_cost(in, Method::diloco), 1.0), Error);
}

TEST_CASE("plan bandwidth needed gives back its utilisation", "[plan]") {
    for (double latency_ms : {0.0, 5.0, 80.0})
        for (int overlap : {0, 1, 5})
            for (Codec codec : {Codec::fp32, Codec::e3m0}) {
                PlanInput in = small_plan();
                in.params = 1'234'567'891;
                in.step_seconds = 0.7;
                in.inner_steps = 100;
                in.fragments = 4;
                in.overlap = overlap;
                in.codec = codec;
                in.link.latency_ms = latency_ms;
                for (Method method : kMethods)
                    for (double u : kTargets) {
                        RoundCost round = round_cost(in, method);
                        double gbps = gbps_needed(round, u);
                        if (std::isinf(gbps)) continue;
                        INFO(method_name(method) << " latency " << latency_ms << " u " << u);
                        CHECK(utilisation(round, gbps) == Approx(u).epsilon(1e-9));
                    }
            }
}

TEST_CASE("plan: streaming needs less bandwidth than DiLoCo, which needs less than ddp",
          "[plan]") {
    for (double latency_ms : {0.0, 10.0}) {
        PlanInput in;
        in.params = 1'000'000'000;
        in.step_seconds = 1;
        in.link.latency_ms = latency_ms;
        for (double u : kTargets) {
            double ddp = gbps_needed(round_cost(in, Method::ddp), u);
            double diloco = gbps_needed(round_cost(in, Method::diloco), u);
            double streaming = gbps_needed(round_cost(in, Method::streaming), u);
            INFO("latency " << latency_ms << " u " << u);
            CHECK(streaming < diloco);
            CHECK(diloco < ddp);
        }
    }
}

TEST_CASE("plan options are checked", "[plan]") {
    CHECK_NOTHROW(validate(small_plan()));
    auto rejects = [](auto change, const char* option) {
        PlanInput bad = small_plan();
        change(bad);
        CHECK_THROWS_WITH(validate(bad), Catch::Contains(option));
    };
    rejects([](PlanInput& b) { b.islands = 1; }, "--islands");
    rejects([](PlanInput& b) { b.params = 0; }, "--params");
    rejects([](PlanInput& b) { b.step_seconds = 0; }, "--step-ms");
    rejects([](PlanInput& b) { b.inner_steps = 0; }, "--inner-steps");
    rejects([](PlanInput& b) { b.fragments = 11; }, "--fragments");
    rejects([](PlanInput& b) { b.overlap = 5; }, "--overlap");
    rejects([](PlanInput& b) { b.overlap = -1; }, "--overlap");
    rejects([](PlanInput& b) { b.link.gbps = -1; }, "--wan-gbps");
}

TEST_CASE("diloco plan prints the table and the same numbers as JSON", "[plan]") {
    auto r = run_diloco("plan --preset paper-400m --step-ms 300");
    REQUIRE(r.exit_code == 0);
    for (const char* text : {"95%", "ddp", "diloco (H=100)", "streaming (F=4, TAU=1)"})
        CHECK(r.out.find(text) != std::string::npos);
    r = run_diloco("plan --preset paper-400m --step-ms 300 --wan-latency-ms 1e6 --json");
    REQUIRE(r.exit_code == 0);
    nlohmann::json j = nlohmann::json::parse(r.out);
    CHECK(j.at("params") == build_layout(preset_config("paper-400m", 50257)).total);
    REQUIRE(j.at("methods").size() == 3);
    CHECK(j.at("methods")[0].at("method") == "ddp");
    CHECK(j.at("methods")[0].at("gbps_needed")[0].is_null());
}

TEST_CASE("diloco plan takes a TOML config", "[plan]") {
    test::TempDir dir;
    test::write_text(dir.file("plan.toml"), "params = 1.5e9\nstep-ms = 100\nislands = 8\n");
    auto r = run_diloco("plan --json --config " + dir.file("plan.toml") + " --islands 2");
    REQUIRE(r.exit_code == 0);
    nlohmann::json j = nlohmann::json::parse(r.out);
    CHECK(j.at("params") == 1500000000);
    CHECK(j.at("islands") == 2);
}

TEST_CASE("diloco plan rejects bad options with one line", "[plan]") {
    const std::string ok = "plan --params 1000000 --step-ms 100";
    check_one_line_error(run_diloco("plan --step-ms 100"), "--preset");
    check_one_line_error(run_diloco("plan --params 1000"), "--step-ms");
    check_one_line_error(run_diloco("plan --preset huge --step-ms 100"), "unknown preset");
    check_one_line_error(run_diloco("plan --params -5 --step-ms 100"), "--params");
    check_one_line_error(run_diloco("plan --params 2.5 --step-ms 100"), "--params");
    check_one_line_error(run_diloco(ok + " --islands 1"), "--islands");
    check_one_line_error(run_diloco(ok + " --overlap 30"), "--overlap");
    check_one_line_error(run_diloco(ok + " --fragments 200"), "--fragments");
    check_one_line_error(run_diloco(ok + " --outer-codec fp8"), "fp8");
    check_one_line_error(run_diloco(ok + " --wan-gbps -1"), "--wan-gbps");
    check_one_line_error(run_diloco(ok + " --wan-latency-ms nan"), "--wan-latency-ms");
}
