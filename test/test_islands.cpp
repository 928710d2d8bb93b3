// Tests of islands under mpirun: DiLoCo's identities (one island is local training; lr 1 and
// momentum 0 is the mean; Nesterov momentum is a hand-computed outer step), ddp against a
// bigger batch, identical global parameters, resume (also with another island count), absent
// islands, token weights, byte counters, bad input.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "comm/outer_sync.h"
#include "model/checkpoint.h"
#include "test/helpers.h"
#include "test/island_runs.h"
#include "util/safetensors.h"

using namespace diloco::test::islands;
using diloco::test::CliResult;
using diloco::test::run_diloco;
using diloco::test::run_mpi;
using diloco::test::TempDir;


TEST_CASE("one island with outer lr 1 and momentum 0 is local training, bit for bit",
          "[islands]") {
    TempDir dir;
    const std::string common = corpus(dir) + kRun + " --steps 8";
    require_ok(run_diloco("train --mode local" + common + " --save " + dir.file("l") +
                          " --log " + dir.file("l.jsonl")));
    require_ok(run_diloco("train --mode diloco --inner-steps 4 --outer-lr 1 --outer-momentum 0" +
                          common + " --save " + dir.file("d") + " --log " + dir.file("d.jsonl")));
    CHECK(losses(dir.file("l.jsonl")) == losses(dir.file("d.jsonl")));
    CHECK(params(dir.file("l")) == params(dir.file("d")));
}

TEST_CASE("islands with outer SGD, lr 1, momentum 0 give exactly their mean", "[islands]") {
    TempDir dir;
    const std::string common = corpus(dir) + kRun + " --islands 2 --steps 4";
    require_ok(run_mpi(2, "train --mode local" + common + " --save " + dir.file("l")));
    require_ok(run_mpi(2, "train --mode diloco --inner-steps 4" + std::string(kMean) + common +
                              " --save " + dir.file("d") + " --log " + dir.file("d.jsonl")));
    std::vector<float> a = params(dir.file("l/island-0")), b = params(dir.file("l/island-1"));
    REQUIRE(a != b);
    CHECK(params(dir.file("d")) == weighted_mean({a, b}, {1, 1}));

    // Byte counters: one outer step, 2 islands of 1 rank, exactly the sharded formula.
    auto last = last_eval(dir.file("d.jsonl"));
    const size_t n = a.size();
    const double expected = double(diloco::island_bytes_sent(n, 2, 1, 0) +
                                   diloco::island_bytes_sent(n, 2, 1, 1));
    CHECK(last.at("bytes_sent").get<double>() == expected);
    CHECK(last.at("bytes_received").get<double>() == expected);
    CHECK(last.at("bytes_ddp_equivalent").get<double>() == 4 * expected);
    CHECK(expected == Approx(2.0 * 0.5 * n * 4 * 2).epsilon(1e-3));  // 2 (k-1)/k n b per island
}

// PyTorch's SGD with nesterov=True (dampening 0) on the outer gradient Delta = global - mean,
// in double: m <- mu m + Delta, global <- global - lr (Delta + mu m).
struct HandNesterov {
    double lr, mu;
    std::vector<double> m;
    void step(std::vector<float>& global, const std::vector<float>& mean) {
        m.resize(global.size(), 0.0);
        for (size_t j = 0; j < global.size(); j++) {
            const double delta = double(global[j]) - double(mean[j]);
            m[j] = mu * m[j] + delta;
            global[j] = static_cast<float>(global[j] - lr * (delta + mu * m[j]));
        }
    }
};

TEST_CASE("islands with outer Nesterov momentum follow a hand-computed outer step for three "
          "rounds", "[islands]") {
    TempDir dir;
    const std::string common = corpus(dir) + kRun + " --islands 2 --steps 12";
    require_ok(run_diloco("train --steps 1" + corpus(dir) + kRun + " --save " + dir.file("start")));
    require_ok(run_mpi(2, "train --mode diloco --inner-steps 4 --outer-opt nesterov --outer-lr 0.7"
                          " --outer-momentum 0.9 --init " + dir.file("start") + common +
                          " --save " + dir.file("d")));
    // Each round of the islands in local mode, from the hand's global parameters with the
    // AdamW state and data position where the last round left them: what a DiLoCo island does.
    HandNesterov hand{0.7, 0.9, {}};
    std::vector<float> global = params(dir.file("start")), round1_global;
    const diloco::GptConfig config = diloco::load_model(dir.file("start")).config;
    const std::string l = dir.file("l");
    for (int round = 1; round <= 3; round++) {
        const std::string start = round == 1 ? " --init " + dir.file("start") : " --resume " + l;
        require_ok(run_mpi(2, "train --mode local --stop-at " + std::to_string(4 * round) + start +
                                  common + " --save " + l));
        hand.step(global,
                  weighted_mean({params(l + "/island-0"), params(l + "/island-1")}, {1, 1}));
        if (round == 1) round1_global = global;
        for (const char* island : {"/island-0", "/island-1"})
            diloco::save_model(l + island, config, global,
                               {{"diloco_step", std::to_string(4 * round)}});
    }
    // Rounding (the code keeps m in fp32) is all that separates them; a wrong outer step (no
    // momentum, heavy ball) moves most parameters by ~lr x the step's size.
    ParamDiff d = param_diff(params(dir.file("d")), global);
    CHECK(d.worst < 1e-4);
    CHECK(d.mean < 1e-7);
    CHECK(param_diff(params(dir.file("d")), round1_global).mean > 1e-5);  // rounds 2, 3 moved it
}

TEST_CASE("islands without --mode train with diloco, and the first line says so", "[islands]") {
    TempDir dir;
    const CliResult r = run_mpi(2, "train --islands 2 --inner-steps 2 --steps 4" + corpus(dir) +
                                       kRun + " --log " + dir.file("d.jsonl"));
    require_ok(r);
    CHECK(r.out.rfind("diloco train: mode diloco (no --mode: diloco, as for any run of islands)",
                      0) == 0);
    CHECK(events(dir.file("d.jsonl"), "outer").size() == 2);
    CHECK(events(dir.file("d.jsonl"), "run").at(0).at("config").at("mode") == "diloco");
}

TEST_CASE("an absent island is averaged out and restarts from the global model", "[islands]") {
    TempDir dir;
    const std::string common = corpus(dir) + kRun + " --islands 2 --steps 8";
    require_ok(run_mpi(2, "train --mode local --stop-at 4" + common + " --save " + dir.file("l")));
    require_ok(run_mpi(2, "train --mode diloco --inner-steps 4 --island-schedule 1-1:0" +
                              std::string(kMean) + common + " --stop-at 4 --save " +
                              dir.file("d") + " --log " + dir.file("d.jsonl")));
    CHECK(params(dir.file("d")) == params(dir.file("l/island-0")));
    CHECK(events(dir.file("d.jsonl"), "outer").back().at("islands_present") ==
          nlohmann::json({true, false}));
    // Island 1 sent none of its parameters (the half it would have sent island 0); it still
    // reduced its half of island 0's and received the new global model.
    const size_t n = params(dir.file("d")).size();
    CHECK(last_eval(dir.file("d.jsonl")).at("bytes_sent").get<double>() ==
          double(diloco::island_bytes_sent(n, 2, 1, 0) + diloco::island_bytes_sent(n, 2, 1, 1) -
                 n / 2 * sizeof(float)));
}

TEST_CASE("seeded drop-out is deterministic and training survives it", "[islands]") {
    TempDir dir;
    const std::string args = "train --mode diloco --inner-steps 2 --drop-prob 0.5" + corpus(dir) +
                             kRun + " --eval-every 1 --islands 2 --steps 16 --log ";
    require_ok(run_mpi(2, args + dir.file("a.jsonl")));
    require_ok(run_mpi(2, args + dir.file("b.jsonl")));
    int absent = 0, outer = 0;
    for (const auto& r : events(dir.file("a.jsonl"), "outer")) {
        outer++;
        for (bool p : r.at("islands_present")) absent += !p;
    }
    const auto evals = events(dir.file("a.jsonl"), "eval");
    CHECK(evals.size() == 8);
    for (const auto& r : evals) CHECK(std::isfinite(r.at("val_loss").get<double>()));
    CHECK(outer == 8);
    CHECK(absent > 0);
    CHECK(absent < 16);
    CHECK(losses(dir.file("a.jsonl")) == losses(dir.file("b.jsonl")));
}

TEST_CASE("weighting by tokens honours unequal islands", "[islands]") {
    TempDir dir;
    const std::string common = corpus(dir) + kRun + " --island-sizes 2,1 --steps 4";
    require_ok(run_mpi(3, "train --mode local" + common + " --save " + dir.file("l")));
    require_ok(run_mpi(3, "train --mode diloco --inner-steps 4 --weight-by-tokens" +
                              std::string(kMean) + common + " --save " + dir.file("d")));
    std::vector<float> a = params(dir.file("l/island-0")), b = params(dir.file("l/island-1"));
    CHECK(params(dir.file("d")) == weighted_mean({a, b}, {2, 1}));
}

TEST_CASE("ddp over K ranks matches one rank with K times the batch", "[islands]") {
    TempDir dir;
    const std::string common = corpus(dir) + " --seq 16 --warmup 2 --lr 2e-3 "
                                             "--eval-every 0 --mode ddp --steps 6";
    // The validation set is the first val-batches x batch windows: 8 in both runs.
    require_ok(run_mpi(2, "train --islands 2 --batch 2 --val-batches 4" + common + " --save " +
                              dir.file("k") + " --log " + dir.file("k.jsonl")));
    require_ok(run_diloco("train --batch 4 --val-batches 2" + common + " --save " +
                          dir.file("one") + " --log " + dir.file("one.jsonl")));
    // The same rows reach the same model; only the order of fp32 sums differs (the mean of two
    // 2-row gradients against one 4-row gradient), about 1e-7 relative per step. AdamW divides
    // by sqrt(v), so an element whose gradient is near zero can turn that into a visible share
    // of its step (at most lr = 2e-3): a few such elements reach 1e-5. A real mismatch (a
    // missing average, a wrong row) moves most elements by ~lr, so the mean difference is the
    // sharp check and the worst one a loose bound.
    ParamDiff d = param_diff(params(dir.file("k")), params(dir.file("one")));
    CHECK(d.worst < 1e-4);
    CHECK(d.mean < 1e-7);
    double vk = last_eval(dir.file("k.jsonl")).at("val_loss").get<double>();
    double v1 = last_eval(dir.file("one.jsonl")).at("val_loss").get<double>();
    CHECK(vk == Approx(v1).epsilon(1e-5));
}

TEST_CASE("after every outer step all ranks hold the same global parameters", "[islands]") {
    TempDir dir;
    require_ok(run_mpi(4, "train --mode diloco --islands 2 --inner-steps 3" + corpus(dir) + kRun +
                              " --steps 9 --log " + dir.file("d.jsonl")));
    int outer = 0;
    for (const auto& r : events(dir.file("d.jsonl"), "outer")) {
        outer++;
        auto sums = r.at("param_checksums");
        REQUIRE(sums.size() == 4);
        for (const auto& s : sums) CHECK(s == sums[0]);
        // Each sync's bytes over the world meet the formula, and its split adds up.
        CHECK(r.at("bytes_sent").get<double>() == r.at("bytes_formula").get<double>());
        const auto& ms = r.at("sync_ms");
        double parts = 0;
        for (const char* part : {"download", "codec", "exchange", "optimizer", "upload"}) {
            CHECK(ms.at(part).get<double>() >= 0);
            parts += ms.at(part).get<double>();
        }
        CHECK(ms.at("total").get<double>() == Approx(parts));
        CHECK(ms.at("exchange").get<double>() > 0);
    }
    CHECK(outer == 3);
    // Two islands of two ranks: each rank reduces half of the vector, the same total bytes.
    auto last = last_eval(dir.file("d.jsonl"));
    const size_t n = params_count_of_tiny();
    CHECK(last.at("bytes_sent").get<double>() ==
          3.0 * double(diloco::island_bytes_sent(n, 2, 2, 0) + diloco::island_bytes_sent(n, 2, 2, 1)));
}

TEST_CASE("diloco resumes bitwise at an outer-step boundary", "[islands]") {
    TempDir dir;
    const std::string common = "train --mode diloco --islands 2 --inner-steps 4" + corpus(dir) +
                               kRun + " --steps 16";
    require_ok(run_mpi(2, common + " --save " + dir.file("a") + " --log " + dir.file("a.jsonl")));
    require_ok(run_mpi(2, common + " --stop-at 8 --save " + dir.file("b") + " --log " +
                              dir.file("b.jsonl")));
    require_ok(run_mpi(2, common + " --resume " + dir.file("b") + " --save " + dir.file("b") +
                              " --log " + dir.file("b.jsonl")));
    CHECK(losses(dir.file("a.jsonl")) == losses(dir.file("b.jsonl")));
    CHECK(params(dir.file("a")) == params(dir.file("b")));
}

// Each rank steps only its share of the outer optimizer; the checkpoint gathers the outer state
// from the shares' owners, over the island's ranks (2,2) and through the leaders (2,1).
TEST_CASE("islands of several ranks resume bitwise: the shared outer state is whole", "[islands]") {
    for (const auto& [ranks, sizes] : {std::pair{4, "2,2"}, std::pair{3, "2,1"}}) {
        INFO("--island-sizes " << sizes);
        TempDir dir;
        const std::string common = std::string("train --mode diloco --island-sizes ") + sizes +
                                   " --inner-steps 3 --outer-momentum 0.9" + corpus(dir) + kRun +
                                   " --steps 9";
        require_ok(run_mpi(ranks, common + " --save " + dir.file("a") + " --log " +
                                      dir.file("a.jsonl")));
        require_ok(run_mpi(ranks, common + " --stop-at 6 --save " + dir.file("b") + " --log " +
                                      dir.file("b.jsonl")));
        require_ok(run_mpi(ranks, common + " --resume " + dir.file("b") + " --save " +
                                      dir.file("b") + " --log " + dir.file("b.jsonl")));
        CHECK(losses(dir.file("a.jsonl")) == losses(dir.file("b.jsonl")));
        CHECK(params(dir.file("a")) == params(dir.file("b")));
    }
}

TEST_CASE("resuming with 4 -> 2 and 2 -> 4 islands trains on without a spike", "[islands]") {
    TempDir dir;
    const std::string data = corpus(dir);
    auto run = [&](int k, const std::string& extra) {
        return run_mpi(k, "train --mode diloco --inner-steps 8 --outer-lr 0.5 --islands " +
                              std::to_string(k) + data + kRun + " --eval-every 1 --steps 32 " +
                              extra);
    };
    require_ok(run(4, "--stop-at 8 --save " + dir.file("c4") + " --log " + dir.file("a.jsonl")));
    require_ok(run(2, "--stop-at 16 --resume " + dir.file("c4") + " --save " + dir.file("c2") +
                          " --log " + dir.file("b.jsonl")));
    require_ok(run(4, "--stop-at 24 --resume " + dir.file("c2") + " --log " + dir.file("c.jsonl")));
    auto val_at = [&](const std::string& log, bool first) {
        std::vector<double> vals;
        for (const auto& r : events(log, "eval")) vals.push_back(r.at("val_loss").get<double>());
        return first ? vals.front() : vals.back();
    };
    // The first validation after a resume is no worse than the last before it (plus noise).
    CHECK(val_at(dir.file("b.jsonl"), true) < val_at(dir.file("a.jsonl"), false) + 0.05);
    CHECK(val_at(dir.file("c.jsonl"), true) < val_at(dir.file("b.jsonl"), false) + 0.05);
    CHECK(events(dir.file("b.jsonl"), "run").at(0).at("step") == 8);
    CHECK(events(dir.file("b.jsonl"), "step").front().at("step") == 9);
    CHECK(events(dir.file("c.jsonl"), "step").front().at("step") == 17);
}

TEST_CASE("islands resumed on fewer ranks keep their ids' state and streams (--island-ids)",
          "[islands]") {
    // Three islands save at step 8; islands 0 and 2 go on alone as a 2-rank job with ids 0,2.
    // That is the 3-island run with island 1 absent from then on, bit for bit: the island with
    // id 2 took up island 2's moments, data stream and position, and its seeds.
    TempDir dir;
    const std::string common = "train --mode diloco --inner-steps 4 --steps 16" + corpus(dir) +
                               kRun;
    require_ok(run_mpi(3, common + " --islands 3 --island-schedule 3-4:0+2 --save " +
                              dir.file("a")));
    require_ok(run_mpi(3, common + " --islands 3 --stop-at 8 --save " + dir.file("b")));
    const std::string outer_before = dir.file("b/outer.safetensors");
    const auto before = diloco::SafetensorsFile::read(outer_before).metadata();
    CliResult r = run_mpi(2, common + " --islands 2 --island-ids 0,2 --resume " + dir.file("b") +
                                 " --save " + dir.file("b"));
    require_ok(r);
    CHECK_THAT(r.out, Catch::Contains("island 1 (id 2, rank 0 of 1 in it)"));
    CHECK(params(dir.file("b")) == params(dir.file("a")));
    const auto after = diloco::SafetensorsFile::read(dir.file("b/outer.safetensors")).metadata();
    CHECK(after.at("island_ids") == "0,2");
    CHECK(after.at("data_position.1") == before.at("data_position.1"));  // nobody read it
    CHECK(after.at("data_position.2") != before.at("data_position.2"));
    CHECK(std::filesystem::exists(dir.file("b/island-2/state.safetensors")));
    CHECK_FALSE(std::filesystem::exists(dir.file("b/island-1")));
    CHECK_THAT(run_mpi(2, common + " --islands 2 --island-ids 0,0 --resume " + dir.file("a")).err,
               Catch::Contains("--island-ids '0,0': id 0 is given twice"));
}

TEST_CASE("bad island setups: one error on rank 0, every rank exits, no hang", "[islands]") {
    TempDir dir;
    const std::string data = corpus(dir) + kRun;
    auto check = [](const CliResult& r, const std::string& needle) {
        INFO("stderr: " << r.err);
        CHECK(r.exit_code != 0);
        CHECK(r.exit_code != 124);  // the timeout: a hang
        CHECK(r.err.find(needle) != std::string::npos);
        CHECK(r.err.find(needle) == r.err.rfind(needle));  // said once, not by every rank
    };
    check(run_mpi(4, "train --mode diloco --islands 3 --steps 4 --inner-steps 2" + data),
          "--islands 3 does not divide the 4 ranks");
    check(run_mpi(4, "train --mode diloco --island-sizes 2,1 --steps 4 --inner-steps 2" + data),
          "--island-sizes 2,1 sums to 3, but the world has 4 ranks");
    check(run_mpi(2, "train --mode diloco --islands 2 --steps 4 --inner-steps 0" + data),
          "--inner-steps: '0' is not a whole number within 1..1000000000");
    require_ok(run_mpi(2, "train --mode diloco --islands 2 --steps 4 --inner-steps 2 --save " +
                              dir.file("ck") + data));
    check(run_mpi(2, "train --mode diloco --islands 2 --steps 4 --inner-steps 2 --preset "
                     "paper-60m --resume " + dir.file("ck") + data),
          "checkpoint is of another model");
}

TEST_CASE("a diverged model is never published, and eval and generate refuse one", "[islands]") {
    TempDir dir;
    const std::string common = "train --mode diloco --islands 2 --inner-steps 3 --eval-every 3" +
                               corpus(dir) + kRun + " --steps 9";
    require_ok(run_mpi(2, common + " --stop-at 3 --save " + dir.file("ck")));
    const std::vector<float> before = params(dir.file("ck"));
    // An outer step at lr 1e30 takes the weights to ~1e26 and the validation loss to NaN.
    const CliResult r = run_mpi(2, common + " --save-every 3 --outer-lr 1e30 --resume " +
                                       dir.file("ck") + " --save " + dir.file("ck"));
    INFO("stderr: " << r.err);
    CHECK(r.exit_code != 0);
    CHECK(r.err.find("step 6: validation loss") != std::string::npos);
    CHECK(r.err.find("not saved, the last checkpoint stays published") != std::string::npos);
    CHECK(params(dir.file("ck")) == before);

    // Weights that overflow while every one of them is finite: no loss, no logits.
    diloco::ModelCheckpoint ck = diloco::load_model(dir.file("ck"));
    for (float& w : ck.params) w *= 1e30f;
    diloco::save_model(dir.file("huge"), ck.config, ck.params, ck.metadata);
    check_one_line_error(run_diloco("eval --checkpoint " + dir.file("huge") + " --data " +
                                    dir.file("d.txt")),
                         "is not finite (the model's weights overflow)");
    const CliResult g = run_diloco("generate --checkpoint " + dir.file("huge") +
                                   " --prompt Hello --tokens 3");
    check_one_line_error(g, "the model's logits are not finite");
    CHECK(g.out.empty());  // not even the prompt
}
