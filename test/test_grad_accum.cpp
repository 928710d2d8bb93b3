// Gradient accumulation through the command line: N micro-batches of B rows train like one
// batch of N x B (same rows, same mean) in local, ddp, diloco and streaming runs; --batch-tokens
// and the TOML key set N; bad values are one-line errors.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "test/helpers.h"
#include "test/island_runs.h"

using namespace diloco::test::islands;
using diloco::test::run_diloco;
using diloco::test::run_mpi;
using diloco::test::TempDir;

namespace {

const char* kShape = " --seq 16 --warmup 2 --lr 2e-3 --eval-every 0";

// Two runs that saw the same rows: step losses (where both log the same rows' loss) and the
// validation loss equal to fp32 rounding, the parameters within the bounds that
// test_islands.cpp's ddp test explains.
void check_same_training(const TempDir& dir, const std::string& a, const std::string& b,
                         bool same_loss_rows = true) {
    std::vector<double> la = losses(dir.file(a + ".jsonl")), lb = losses(dir.file(b + ".jsonl"));
    REQUIRE(la.size() == lb.size());
    for (size_t i = 0; i < la.size() && same_loss_rows; i++)
        CHECK(la[i] == Approx(lb[i]).epsilon(1e-6));
    double va = last_eval(dir.file(a + ".jsonl")).at("val_loss").get<double>();
    double vb = last_eval(dir.file(b + ".jsonl")).at("val_loss").get<double>();
    CHECK(va == Approx(vb).epsilon(1e-5));
    ParamDiff d = param_diff(params(dir.file(a)), params(dir.file(b)));
    CHECK(d.worst < 1e-4);
    CHECK(d.mean < 1e-7);
}

std::string outputs(const TempDir& dir, const std::string& name) {
    return " --save " + dir.file(name) + " --log " + dir.file(name + ".jsonl");
}

}  // namespace

TEST_CASE("3 micro-batches of 2 rows train as one batch of 6", "[accum]") {
    TempDir dir;
    const std::string common = "train" + corpus(dir) + kShape + " --steps 4";
    // The validation set is the first val-batches x batch windows: 6 in both runs.
    require_ok(run_diloco(common + " --batch 2 --grad-accum 3 --val-batches 3" +
                          outputs(dir, "micro")));
    require_ok(run_diloco(common + " --batch 6 --val-batches 1" + outputs(dir, "whole")));
    check_same_training(dir, "micro", "whole");
}

TEST_CASE("ddp: 2 ranks of 2 micro-batches of 1 row train as one rank with 4 rows", "[accum]") {
    TempDir dir;
    const std::string common = "train --mode ddp" + corpus(dir) + kShape + " --steps 6";
    require_ok(run_mpi(2, common + " --islands 2 --batch 1 --grad-accum 2 --val-batches 8" +
                              outputs(dir, "micro")));
    require_ok(run_diloco(common + " --batch 4 --val-batches 2" + outputs(dir, "whole")));
    check_same_training(dir, "micro", "whole", false);  // ddp logs rank 0's rows' loss
}

TEST_CASE("diloco and streaming: micro-batches train each island as its whole batch",
          "[accum]") {
    for (const std::string streaming : {"", " --fragments 2"}) {
        TempDir dir;
        const std::string common = "train --mode diloco --islands 2 --inner-steps 3" +
                                   corpus(dir) + kShape + " --steps 6" + streaming;
        require_ok(run_mpi(2, common + " --batch 1 --grad-accum 3 --val-batches 3" +
                                  outputs(dir, "micro")));
        require_ok(run_mpi(2, common + " --batch 3 --val-batches 1" + outputs(dir, "whole")));
        INFO("streaming: '" << streaming << "'");
        check_same_training(dir, "micro", "whole");
    }
}

TEST_CASE("tokens per step (--batch-tokens) or a TOML key set the micro-batches", "[accum]") {
    TempDir dir;
    const std::string common = "train" + corpus(dir) + kShape + " --steps 3 --batch 2";
    // 96 tokens per step = 3 micro-batches of 2 x 16: the same computation as --grad-accum 3.
    auto by_tokens = run_diloco(common + " --batch-tokens 96" + outputs(dir, "tokens"));
    require_ok(by_tokens);
    CHECK(by_tokens.out.find("gradient accumulation: 3 micro-batches of 2 x 16 tokens") !=
          std::string::npos);
    diloco::test::write_text(dir.file("run.toml"), "grad-accum = 3\n");
    require_ok(run_diloco(common + " --config " + dir.file("run.toml") + outputs(dir, "toml")));
    CHECK(losses(dir.file("tokens.jsonl")) == losses(dir.file("toml.jsonl")));
    CHECK(params(dir.file("tokens")) == params(dir.file("toml")));
    for (const auto& r : events(dir.file("tokens.jsonl"), "step"))
        CHECK(r.at("tokens").get<int>() == r.at("step").get<int>() * 96);
    // ddp: 32 tokens per island x 2 islands over 2 ranks of 1 x 16: 2 micro-batches each.
    auto ddp = run_mpi(2, "train --mode ddp --islands 2" + corpus(dir) + kShape +
                              " --steps 2 --batch 1 --batch-tokens 32 --log " +
                              dir.file("ddp.jsonl"));
    require_ok(ddp);
    CHECK(ddp.out.find("gradient accumulation: 2 micro-batches of 1 x 16") != std::string::npos);
    CHECK(events(dir.file("ddp.jsonl"), "step").back().at("tokens").get<int>() == 2 * 64);
}

TEST_CASE("bad accumulation and peak-rate options are one-line errors", "[accum]") {
    TempDir dir;
    const std::string common = "train" + corpus(dir) + kShape + " --steps 2 --batch 2";
    check_one_line_error(run_diloco(common + " --grad-accum 0"), "--grad-accum: '0' is not a whole number within 1..1048576");
    check_one_line_error(run_diloco(common + " --batch-tokens 100"),
                         "--batch-tokens 100 is not a whole number of micro-batches of "
                         "--batch x --seq = 32 tokens");
    check_one_line_error(run_diloco(common + " --grad-accum 2 --batch-tokens 64"),
                         "--grad-accum and --batch-tokens exclude each other");
    check_one_line_error(run_diloco(common + " --peak-tflops -1"),
                         "--peak-tflops: '-1' is not a finite number >= 0");
}
