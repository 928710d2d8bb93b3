// A device and a batch per island (--island-devices, --island-batch) on the CPU: cpu,cpu is the
// plain run bit for bit; unequal batches weigh the outer mean by tokens, keep every rank's
// checksum equal, share the world's validation windows and resume; every refusal is one line.
#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "test/helpers.h"
#include "test/island_runs.h"
#include "test/skip.h"

using namespace diloco::test::islands;
using diloco::test::CliResult;
using diloco::test::run_diloco;
using diloco::test::run_mpi;
using diloco::test::TempDir;

namespace {

// The number of outer steps in a log, checking that all ranks' checksums agree at each.
int outer_steps_with_equal_checksums(const std::string& log, size_t ranks) {
    int outer = 0;
    for (const auto& r : events(log, "outer")) {
        outer++;
        const auto sums = r.at("param_checksums");
        REQUIRE(sums.size() == ranks);
        for (const auto& s : sums) CHECK(s == sums[0]);
    }
    return outer;
}

// A refused run: one error line naming the problem, a failing exit, and nothing written beside
// the corpus (no log, no checkpoint directory).
void check_refused(const CliResult& r, const TempDir& dir, const std::string& needle) {
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.exit_code != 0);
    CHECK(r.exit_code != 124);  // the timeout: a hang
    std::istringstream lines(r.err);
    int errors = 0;
    for (std::string line; std::getline(lines, line);)
        if (line.find("diloco: error") != std::string::npos) {
            errors++;
            CHECK(line.find(needle) != std::string::npos);
        }
    CHECK(errors == 1);
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(dir.path()))
        names.push_back(entry.path().filename().string());
    CHECK(names == std::vector<std::string>{"d.txt"});
}

}  // namespace

TEST_CASE("islands on --island-devices cpu,cpu train bit for bit as without it",
          "[islands][devices]") {
    TempDir dir;
    const std::string common =
        "train --mode diloco --islands 2 --inner-steps 2 --steps 4" + corpus(dir) + kRun;
    require_ok(run_mpi(2, common + " --save " + dir.file("a") + " --log " + dir.file("a.jsonl")));
    const CliResult r = run_mpi(2, common + " --island-devices cpu,cpu --save " + dir.file("b") +
                                       " --log " + dir.file("b.jsonl"));
    require_ok(r);
    CHECK(params(dir.file("a")) == params(dir.file("b")));
    CHECK(losses(dir.file("a.jsonl")) == losses(dir.file("b.jsonl")));
    CHECK(last_eval(dir.file("a.jsonl")).at("val_loss") ==
          last_eval(dir.file("b.jsonl")).at("val_loss"));
    INFO(r.out);
    for (const char* place : {"island 0 (rank 0 of 1 in it), cpu\n",
                              "island 1 (rank 0 of 1 in it), cpu\n"})
        CHECK(r.out.find(place) != std::string::npos);
    CHECK(events(dir.file("b.jsonl"), "run").at(0).at("config").at("island_devices") ==
          nlohmann::json({"cpu", "cpu"}));
}

TEST_CASE("island batches 4,2 with --weight-by-tokens weigh the outer mean 2:1",
          "[islands][devices]") {
    // Outer SGD with lr 1 and momentum 0 sets the global model to the islands' weighted mean,
    // and local mode trains each island exactly as DiLoCo does up to its first sync.
    TempDir dir;
    const std::string common = corpus(dir) + kRun + " --islands 2 --island-batch 4,2 --steps 4";
    require_ok(run_mpi(2, "train --mode local" + common + " --save " + dir.file("l")));
    require_ok(run_mpi(2, "train --mode diloco --inner-steps 4 --weight-by-tokens" +
                              std::string(kMean) + common + " --save " + dir.file("d") +
                              " --log " + dir.file("d.jsonl")));
    const std::vector<float> a = params(dir.file("l/island-0")), b = params(dir.file("l/island-1"));
    REQUIRE(a != b);
    const std::vector<float> global = params(dir.file("d"));
    CHECK(global == weighted_mean({a, b}, {2, 1}));  // 4 rows against 2, all else alike
    CHECK(global != weighted_mean({a, b}, {1, 1}));
    // Each step trains both islands' rows: (4 + 2) x 16 tokens.
    CHECK(events(dir.file("d.jsonl"), "step").at(0).at("tokens") == 6 * 16);
    CHECK(outer_steps_with_equal_checksums(dir.file("d.jsonl"), 2) == 1);
}

TEST_CASE("unequal island batches keep every rank's checksum equal and resume, also with other "
          "batches", "[islands][devices]") {
    TempDir dir;
    const std::string common = "train --mode diloco --islands 2 --inner-steps 2 "
                               "--weight-by-tokens --steps 8" + corpus(dir) + kRun;
    const std::string batches = " --island-batch 4,2";
    require_ok(run_mpi(2, common + batches + " --save " + dir.file("full") + " --log " +
                              dir.file("full.jsonl")));
    CHECK(outer_steps_with_equal_checksums(dir.file("full.jsonl"), 2) == 4);

    // Stopped at step 4 and resumed with the same batches: the uninterrupted run, bit for bit.
    require_ok(run_mpi(2, common + batches + " --stop-at 4 --save " + dir.file("b") + " --log " +
                              dir.file("b.jsonl")));
    require_ok(run_mpi(2, common + batches + " --resume " + dir.file("b") + " --save " +
                              dir.file("b") + " --log " + dir.file("b.jsonl")));
    CHECK(params(dir.file("b")) == params(dir.file("full")));
    CHECK(losses(dir.file("b.jsonl")) == losses(dir.file("full.jsonl")));

    // Batches are the islands' hardware, not their state: a resume may change them. The
    // weights of each round are then the tokens of the batches that trained it.
    require_ok(run_mpi(2, common + " --island-batch 2,4 --resume " + dir.file("b.steps/step-00000004") +
                              " --save " + dir.file("c") + " --log " + dir.file("c.jsonl")));
    CHECK(outer_steps_with_equal_checksums(dir.file("c.jsonl"), 2) == 2);
    CHECK(params(dir.file("c")) != params(dir.file("full")));
    CHECK(events(dir.file("c.jsonl"), "run").at(0).at("config").at("island_batch") ==
          nlohmann::json({2, 4}));
}

TEST_CASE("islands' own batches keep the world's validation windows and their split",
          "[islands][devices]") {
    // --batch 3 and --val-batches 3 are 9 windows in 3 batches: island 0 (4 rows) evaluates
    // batches 0 and 2 whole, island 1 (1 row) batch 1 a row at a time. `diloco eval` of the
    // saved global model on one process sees the same 9 windows.
    TempDir dir;
    const std::string data = corpus(dir);
    require_ok(run_mpi(2, "train --mode diloco --islands 2 --inner-steps 2 --steps 2 --batch 3 "
                          "--island-batch 4,1 --seq 16 --val-batches 3 --lr 2e-3" + data +
                              " --save " + dir.file("d") + " --log " + dir.file("d.jsonl")));
    const CliResult eval = run_diloco("eval --json --checkpoint " + dir.file("d") + data +
                                      " --batch 3 --seq 16 --val-batches 3");
    require_ok(eval);
    const nlohmann::json one = nlohmann::json::parse(eval.out);
    CHECK(one.at("windows") == 9);
    // Only the order of the sums differs (rows per evaluation and ranks): ~1e-7 relative.
    CHECK(last_eval(dir.file("d.jsonl")).at("val_loss").get<double>() ==
          Approx(one.at("val_loss").get<double>()).epsilon(1e-6));
}

TEST_CASE("bad --island-devices and --island-batch lists are refused before anything starts",
          "[islands][devices]") {
    TempDir dir;
    const std::string any = "train --islands 2 --inner-steps 2 --steps 2" + corpus(dir) + kRun +
                            " --save " + dir.file("ck") + " --log " + dir.file("log.jsonl");
    const std::string run = any + " --mode diloco";
    check_refused(run_mpi(2, run + " --island-devices cpu"), dir,
                  "--island-devices cpu: 1 device for 2 islands (one per island, in island "
                  "order)");
    check_refused(run_mpi(2, run + " --island-devices cpu,cpu,cpu"), dir,
                  "--island-devices cpu,cpu,cpu: 3 devices for 2 islands");
    check_refused(run_diloco(run + " --island-devices cpu,gpu"), dir,
                  "--island-devices: gpu not in {cpu,cuda}");
    check_refused(run_mpi(2, run + " --device cpu --island-devices cpu,cpu"), dir,
                  "--island-devices and --device exclude each other: give one");
    check_refused(run_mpi(2, run + " --island-devices cpu,cpu --precision bf16"), dir,
                  "--island-devices cpu,cpu: --precision bf16 and --attention apply to CUDA "
                  "islands, and there are none");
    check_refused(run_mpi(2, run + " --island-devices cpu,cpu --precision fp16"), dir,
                  "--precision 'fp16': expected bf16 or fp32");
    check_refused(run_mpi(2, any + " --mode ddp --island-devices cuda,cpu"), dir,
                  "--island-devices: ddp keeps one model on every rank");
    check_refused(run_mpi(2, run + " --island-batch 4"), dir,
                  "--island-batch 4: 1 batch for 2 islands (one per island, in island order)");
    check_refused(run_diloco(run + " --island-batch 4,0"), dir, "--island-batch");
    check_refused(run_mpi(2, any + " --island-batch 4,2 --mode ddp"), dir,
                  "--island-batch 4,2: ddp shares one batch across all ranks; give --batch");
    check_refused(run_mpi(2, run + " --island-batch 4,2 --batch-tokens 128"), dir,
                  "--island-batch 4,2 and --batch-tokens exclude each other");
}

TEST_CASE("a CUDA island without a GPU to run it is refused before anything starts",
          "[islands][devices]") {
    // In a build without CUDA every rank refuses alike; in a CUDA build on a machine without a
    // GPU the CUDA island's rank does. Where a GPU runs it, there is nothing to refuse.
    TempDir dir;
    const CliResult r = run_mpi(2, "train --mode diloco --islands 2 --inner-steps 2 --steps 2" +
                                       corpus(dir) + kRun + " --island-devices cuda,cpu --save " +
                                       dir.file("ck") + " --log " + dir.file("log.jsonl"));
    if (r.exit_code == 0) diloco::test::skip_test("this machine runs the CUDA island");
    const bool build = r.err.find("this build has no CUDA backend") != std::string::npos;
    check_refused(r, dir,
                  build ? "--island-devices cuda,cpu: this build has no CUDA backend"
                        : "--island-devices cuda,cpu (this rank's island on cuda): this machine "
                          "has no CUDA device (or no driver)");
}
