// Tests of the `diloco` command line as a user runs it: bitwise resume through checkpoints,
// TOML configs, generation, and a one-line error with a non-zero exit for each bad input.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "data/shard.h"
#include "model/checkpoint.h"
#include "test/helpers.h"
#include "test/island_runs.h"
#include "util/safetensors.h"

using diloco::test::islands::check_one_line_error;
using diloco::test::run_diloco;
using diloco::test::TempDir;

namespace {

const char* kSmallRun = " --batch 4 --seq 32 --eval-every 0 --val-batches 2 --warmup 3";

using diloco::test::islands::events;
using diloco::test::islands::losses;

// Writes DIR/d.txt (synthetic text of this seed) and trains on it for `steps`, saving DIR/ck.
void train_small_checkpoint(const TempDir& dir, uint64_t seed, int steps) {
    diloco::test::write_text(dir.file("d.txt"), diloco::test::synthetic_text(30000, seed));
    REQUIRE(run_diloco("train --data " + dir.file("d.txt") + kSmallRun + " --steps " +
                       std::to_string(steps) + " --save " + dir.file("ck"))
                .exit_code == 0);
}

}  // namespace

TEST_CASE("20 steps equal 10 steps, save, resume, 10 steps, bitwise", "[cli]") {
    TempDir dir;
    diloco::test::write_text(dir.file("d.txt"), diloco::test::synthetic_text(40000, 3));
    std::string common = "train --data " + dir.file("d.txt") + kSmallRun + " --steps 20";
    auto straight = run_diloco(common + " --log " + dir.file("a.jsonl") + " --save " +
                               dir.file("a"));
    REQUIRE(straight.exit_code == 0);
    auto first = run_diloco(common + " --stop-at 10 --log " + dir.file("b.jsonl") + " --save " +
                            dir.file("b"));
    REQUIRE(first.exit_code == 0);
    auto second = run_diloco(common + " --resume " + dir.file("b") + " --log " +
                             dir.file("b.jsonl") + " --save " + dir.file("b"));
    REQUIRE(second.exit_code == 0);
    std::vector<double> a = losses(dir.file("a.jsonl")), b = losses(dir.file("b.jsonl"));
    REQUIRE(a.size() == 20);
    CHECK(a == b);
    CHECK(diloco::test::read_text(dir.file("a/model.safetensors")) ==
          diloco::test::read_text(dir.file("b/model.safetensors")));
    CHECK(diloco::test::read_text(dir.file("a/outer.safetensors")) ==
          diloco::test::read_text(dir.file("b/outer.safetensors")));
    CHECK(diloco::test::read_text(dir.file("a/island-0/state.safetensors")) ==
          diloco::test::read_text(dir.file("b/island-0/state.safetensors")));
}

TEST_CASE("options come from a TOML config, and flags override it", "[cli]") {
    TempDir dir;
    diloco::test::write_text(dir.file("d.txt"), diloco::test::synthetic_text(30000, 4));
    diloco::test::write_text(dir.file("run.toml"), "steps = 3\nbatch = 2\nseq = 16\n"
                                                   "eval-every = 0\nval-batches = 1\n");
    auto r = run_diloco("train --config " + dir.file("run.toml") + " --data " + dir.file("d.txt") +
                        " --log " + dir.file("log.jsonl"));
    REQUIRE(r.exit_code == 0);
    CHECK(losses(dir.file("log.jsonl")).size() == 3);
    r = run_diloco("train --config " + dir.file("run.toml") + " --steps 2 --data " +
                   dir.file("d.txt") + " --log " + dir.file("log2.jsonl"));
    REQUIRE(r.exit_code == 0);
    CHECK(losses(dir.file("log2.jsonl")).size() == 2);
}

TEST_CASE("metrics: run, step, eval and end events, each with the documented fields", "[cli]") {
    TempDir dir;
    diloco::test::write_text(dir.file("d.txt"), diloco::test::synthetic_text(30000, 5));
    auto r = run_diloco("train --data " + dir.file("d.txt") +
                        " --batch 4 --seq 32 --val-batches 2 --steps 4 --eval-every 2 --lr 2e-3"
                        " --log " + dir.file("log.jsonl"));
    REQUIRE(r.exit_code == 0);
    const auto all = diloco::test::islands::records(dir.file("log.jsonl"));
    std::vector<std::string> order;
    double time = 0;
    for (const auto& j : all) {
        order.push_back(j.at("event").get<std::string>());
        CHECK(j.at("time").get<double>() >= time);  // seconds since the epoch, in order
        time = j.at("time").get<double>();
    }
    CHECK(order == std::vector<std::string>{"run", "step", "step", "eval", "step", "step", "eval",
                                            "end"});
    CHECK(time > 1.7e9);
    const auto run = all.front();
    const auto& config = run.at("config");
    CHECK(config.at("lr").dump() == "0.002");  // the value, not float noise
    CHECK(config.at("mode") == "local");
    CHECK(config.at("steps") == 4);
    CHECK(config.at("outer_lr").dump() == "0.7");
    CHECK(run.at("build").at("git_commit").get<std::string>().size() >= 7);
    CHECK(!run.at("build").at("version").get<std::string>().empty());
    CHECK(!run.at("build").at("device").get<std::string>().empty());
    // Every option of --help has its value in the first record, as a key with underscores.
    auto help = run_diloco("train --help");
    std::istringstream words(help.out);
    const char* kNameChars = "abcdefghijklmnopqrstuvwxyz0123456789-";
    int options = 0;
    for (std::string word; words >> word;) {
        if (word.rfind("--", 0) != 0) continue;
        word = word.substr(2, word.find_first_not_of(kNameChars, 2) - 2);
        if (word == "help" || word == "config" || word.empty()) continue;
        std::replace(word.begin(), word.end(), '-', '_');
        INFO(word);
        CHECK(config.contains(word));
        options++;
    }
    CHECK(options > 40);
    for (const auto& j : events(dir.file("log.jsonl"), "step")) {
        for (const char* key : {"step", "tokens", "loss", "lr", "grad_norm", "ms"})
            CHECK(j.contains(key));
        CHECK(j.at("tokens").get<int>() == j.at("step").get<int>() * 4 * 32);
    }
    // A step's lr is its float's shortest decimal (at most 9 digits), not the double's noise.
    const auto lr = events(dir.file("log.jsonl"), "step")[3].at("lr");
    CHECK(lr.dump().size() <= 15);
    CHECK(std::stof(lr.dump()) == lr.get<float>());
    for (const auto& j : events(dir.file("log.jsonl"), "eval")) {
        CHECK(j.at("step").get<int>() % 2 == 0);
        CHECK(j.at("val_ppl").get<double>() == Approx(std::exp(j.at("val_loss").get<double>())));
    }
    const auto end = all.back();
    CHECK((end.at("step") == 4 && end.at("steps_run") == 4));
    CHECK(r.out.find("step     4/4 | loss") != std::string::npos);
}

TEST_CASE("train's help is grouped, and enum options take their names only", "[cli]") {
    auto help = run_diloco("train --help");
    REQUIRE(help.exit_code == 0);
    size_t at = 0;
    for (const char* group : {"Model:", "Data:", "Optimizer", "Islands:", "Outer step",
                              "Streaming DiLoCo:", "Device:", "Output:"}) {
        const size_t found = help.out.find(group);
        INFO(group << " in\n" << help.out);
        CHECK(found != std::string::npos);
        CHECK(found >= at);  // in this order
        at = found;
    }
    CHECK_THAT(help.out, Catch::Contains("--outer-beta2") && Catch::Contains("--print-every"));
    TempDir dir;
    diloco::test::write_text(dir.file("d.txt"), diloco::test::synthetic_text(30000, 4));
    const std::string base = "train --steps 2 --data " + dir.file("d.txt") + kSmallRun;
    check_one_line_error(run_diloco(base + " --outer-opt lion"),
                         "--outer-opt: lion not in {nesterov,sgd,adam}");
    check_one_line_error(run_diloco(base + " --mode turbo"), "--mode: turbo not in");
    check_one_line_error(run_diloco(base + " --mode 2"), "--mode: 2 not in");  // names only
    check_one_line_error(run_diloco(base + " --outer-codec int3"), "--outer-codec: int3 not in");
    check_one_line_error(run_diloco(base + " --print-every 0"),
                         "--print-every: '0' is not a whole number within 1..1000000000");
    check_one_line_error(run_diloco(base + " --outer-opt adam --outer-beta2 1"),
                         "--outer-beta2: '1' is not a finite number within [0, 1)");
}

TEST_CASE("step lines: elapsed time and ETA, every --print-every steps and the last", "[cli]") {
    TempDir dir;
    diloco::test::write_text(dir.file("d.txt"), diloco::test::synthetic_text(30000, 4));
    auto r = run_diloco("train --steps 7 --print-every 3 --data " + dir.file("d.txt") + kSmallRun);
    REQUIRE(r.exit_code == 0);
    std::vector<std::string> steps;
    std::istringstream lines(r.out);
    for (std::string line; std::getline(lines, line);)
        if (line.rfind("step ", 0) == 0 && line.find("| loss") != std::string::npos)
            steps.push_back(line);
    REQUIRE(steps.size() == 3);
    CHECK(steps[0].rfind("step     3/7", 0) == 0);
    CHECK(steps[1].rfind("step     6/7", 0) == 0);
    CHECK(steps[2].rfind("step     7/7", 0) == 0);
    for (const std::string& line : steps) CHECK_THAT(line, Catch::Contains("s, ETA "));
    CHECK_THAT(steps[2], Catch::EndsWith("ETA 0.0s"));
}

TEST_CASE("generate samples from a trained checkpoint", "[cli]") {
    TempDir dir;
    train_small_checkpoint(dir, 6, 2);
    auto r = run_diloco("generate --checkpoint " + dir.file("ck") +
                        " --prompt 'the island' --tokens 17 --seed 3");
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.rfind("the island", 0) == 0);
    CHECK(r.out.size() == std::string("the island").size() + 17 + 1);
    auto again = run_diloco("generate --checkpoint " + dir.file("ck") +
                            " --prompt 'the island' --tokens 17 --seed 3");
    CHECK(again.out == r.out);
}

TEST_CASE("eval gives the validation loss that training logged", "[cli]") {
    TempDir dir;
    const std::string text = diloco::test::synthetic_text(40000, 9);
    diloco::test::write_text(dir.file("d.txt"), text);
    REQUIRE(run_diloco("train --data " + dir.file("d.txt") +
                       " --batch 4 --seq 32 --warmup 3 --steps 6 --eval-every 6 --val-batches 3"
                       " --save " + dir.file("ck") + " --log " + dir.file("m.jsonl"))
                .exit_code == 0);
    std::istringstream lines(diloco::test::read_text(dir.file("m.jsonl")));
    double logged = 0;
    for (std::string line; std::getline(lines, line);) {
        auto j = nlohmann::json::parse(line);
        if (j.contains("val_loss")) logged = j.at("val_loss").get<double>();
    }
    const std::string eval = "eval --checkpoint " + dir.file("ck") + " --data " + dir.file("d.txt");
    auto r = run_diloco(eval + " --batch 4 --seq 32 --val-batches 3 --json");
    INFO("stderr: " << r.err);
    REQUIRE(r.exit_code == 0);
    auto j = nlohmann::json::parse(r.out);
    CHECK(j.at("val_loss").get<double>() == logged);  // the same sums in the same order
    CHECK(j.at("windows") == 12);
    CHECK(j.at("step") == "6");
    CHECK(j.at("val_ppl").get<double>() == Approx(std::exp(logged)));
    CHECK(j.at("val_bits").get<double>() == Approx(logged / std::log(2.0)));
    auto line = run_diloco(eval + " --batch 4 --seq 32 --val-batches 3");
    REQUIRE(line.exit_code == 0);
    char loss[32];
    std::snprintf(loss, sizeof loss, "| val loss %.4f |", logged);
    CHECK_THAT(line.out, Catch::Contains("(step 6)") && Catch::Contains("12 windows of 32 tokens") &&
                             Catch::Contains(loss));
    // All windows of the model's whole context: another number, from more text.
    auto all = run_diloco(eval + " --json");
    REQUIRE(all.exit_code == 0);
    auto whole = nlohmann::json::parse(all.out);
    CHECK(whole.at("seq") == 128);
    const size_t val_bytes = static_cast<size_t>(text.size() * 0.1);  // the held-out tail
    CHECK(whole.at("windows").get<size_t>() == (val_bytes - 1) / 128);
    CHECK(whole.at("val_loss").get<double>() != logged);
}

TEST_CASE("eval --dump writes each window's ids, logits and losses", "[cli]") {
    TempDir dir;
    train_small_checkpoint(dir, 4, 3);
    const std::string eval = "eval --checkpoint " + dir.file("ck") + " --data " +
                             dir.file("d.txt") + " --batch 4 --seq 32 --val-batches 2 --json";
    auto r = run_diloco(eval + " --dump " + dir.file("dump.safetensors"));
    INFO("stderr: " << r.err);
    REQUIRE(r.exit_code == 0);
    const auto dump = diloco::SafetensorsFile::read(dir.file("dump.safetensors"));
    CHECK(dump.entries().at("inputs").dtype == "I32");
    CHECK(dump.entries().at("targets").shape == std::vector<int64_t>{8, 32});
    std::vector<float> logits(8 * 32 * 256), losses(8 * 32);
    std::vector<int32_t> inputs(8 * 32), targets(8 * 32);
    dump.read_f32("logits", {8, 32, 256}, logits.data());
    dump.read_f32("losses", {8, 32}, losses.data());
    dump.read_i32("inputs", {8, 32}, inputs.data());
    dump.read_i32("targets", {8, 32}, targets.data());
    // Windows of the text: each target is the next input; each loss is the cross-entropy of its
    // logits at the target, and their mean is the loss eval prints.
    double sum = 0, worst = 0;
    for (size_t n = 0; n < losses.size(); n++) {
        if (n % 32 != 31) CHECK(targets[n] == inputs[n + 1]);
        const float* row = logits.data() + n * 256;
        double max = *std::max_element(row, row + 256), z = 0;
        for (int v = 0; v < 256; v++) z += std::exp(double(row[v]) - max);
        worst = std::max(worst, std::abs(std::log(z) + max - row[targets[n]] - losses[n]));
        sum += losses[n];
    }
    CHECK(worst < 1e-5);
    CHECK(sum / losses.size() ==
          Approx(nlohmann::json::parse(r.out).at("val_loss").get<double>()).epsilon(1e-6));
    // The checkpoint states its end-of-text token (NUL for bytes) and no dropout.
    auto config = nlohmann::json::parse(diloco::test::read_text(dir.file("ck/config.json")));
    CHECK(config.at("eos_token_id") == 0);
    CHECK(config.at("bos_token_id") == 0);
    CHECK(config.at("resid_pdrop") == 0.0);
    CHECK(std::filesystem::exists(dir.file("ck/vocab.json")));

    check_one_line_error(run_diloco(eval + " --dump " + dir.file("no/such/dir/dump")),
                         dir.file("no/such/dir/dump"));
    CHECK_FALSE(std::filesystem::exists(dir.file("no")));
}

TEST_CASE("init from given weights starts a fresh optimizer", "[cli]") {
    TempDir dir;
    diloco::test::write_text(dir.file("d.txt"), diloco::test::synthetic_text(30000, 8));
    const std::string run = "train --data " + dir.file("d.txt") + kSmallRun;
    REQUIRE(run_diloco(run + " --steps 3 --save " + dir.file("a")).exit_code == 0);
    REQUIRE(run_diloco(run + " --steps 1 --lr 1e-12 --init " + dir.file("a") + " --save " +
                       dir.file("b") + " --log " + dir.file("b.jsonl"))
                .exit_code == 0);
    std::vector<float> a = diloco::load_model(dir.file("a")).params;
    std::vector<float> b = diloco::load_model(dir.file("b")).params;
    REQUIRE(a.size() == b.size());
    double worst = 0;
    for (size_t i = 0; i < a.size(); i++) worst = std::max(worst, double(std::abs(a[i] - b[i])));
    CHECK(worst < 1e-6);  // one step at lr 1e-12 (AdamW steps are at most ~lr)
    CHECK(events(dir.file("b.jsonl"), "step").at(0).at("step") == 1);
    CHECK(events(dir.file("b.jsonl"), "run").at(0).at("config").at("init") == dir.file("a"));
    check_one_line_error(run_diloco(run + " --steps 2 --init " + dir.file("a") + " --resume " +
                                    dir.file("a")),
                         "--init and --resume exclude each other");
}

TEST_CASE("bad input: a one-line error and a non-zero exit", "[cli]") {
    TempDir dir;
    diloco::test::write_text(dir.file("d.txt"), diloco::test::synthetic_text(30000, 7));
    diloco::test::write_text(dir.file("empty.txt"), "");
    const std::string ok = " --batch 2 --eval-every 0";
    const std::string one = ok + " --steps 1 --seq 16";

    check_one_line_error(run_diloco("train --data " + dir.file("missing.txt") + one),
                         dir.file("missing.txt") + ": cannot open");
    check_one_line_error(run_diloco("train --data " + dir.file("empty.txt") + one),
                         dir.file("empty.txt") + ": empty data file");
    check_one_line_error(run_diloco("train --data " + dir.file("d.txt") + ok +
                                    " --steps 1 --seq 129"),
                         "exceeds the position table");
    check_one_line_error(run_diloco("train --data " + dir.file("d.txt") + one + " --preset huge"),
                         "unknown preset 'huge'");
    check_one_line_error(run_diloco("train --data " + dir.file("d.txt") + ok +
                                    " --seq 16 --steps 0"),
                         "--steps: '0' is not a whole number within 1..1000000000");

    auto unknown = run_diloco("train --data " + dir.file("d.txt") + one + " --bogus 3");
    CHECK(unknown.exit_code != 0);
    CHECK(unknown.err.find("--bogus") != std::string::npos);

    REQUIRE(run_diloco("train --data " + dir.file("d.txt") + one + " --save " + dir.file("ck"))
                .exit_code == 0);
    const std::string weights = dir.file("ck/model.safetensors");
    std::filesystem::resize_file(weights, std::filesystem::file_size(weights) / 2);
    check_one_line_error(run_diloco("train --data " + dir.file("d.txt") + ok +
                                    " --seq 16 --steps 2 --resume " + dir.file("ck")),
                         weights + ": truncated");
    check_one_line_error(run_diloco("generate --checkpoint " + dir.file("ck")),
                         weights + ": truncated");

    check_one_line_error(run_diloco("eval --checkpoint " + dir.file("ck")), weights + ": truncated");
    check_one_line_error(run_diloco("eval --checkpoint " + dir.file("nothing")),
                         dir.file("nothing"));
    REQUIRE(run_diloco("train --data " + dir.file("d.txt") + one + " --save " + dir.file("ok"))
                .exit_code == 0);
    check_one_line_error(run_diloco("eval --checkpoint " + dir.file("ok") + " --seq 129"),
                         "--seq 129 is outside the model's context of 1..128 tokens");
    check_one_line_error(run_diloco("eval --checkpoint " + dir.file("ok") + " --batch 0"),
                         "--batch: '0' is not a whole number within 1..65536");
    check_one_line_error(run_diloco("eval --checkpoint " + dir.file("ok") + " --val-batches -1"),
                         "--val-batches: '-1' is not a whole number within 0..");
    std::filesystem::create_directories(dir.file("sharded"));
    std::filesystem::copy_file(dir.file("ok/config.json"), dir.file("sharded/config.json"));
    diloco::test::write_text(dir.file("sharded/model.safetensors.index.json"), "{\"weight_map\": [");
    check_one_line_error(run_diloco("eval --checkpoint " + dir.file("sharded")),
                         dir.file("sharded/model.safetensors.index.json") + ": malformed JSON");
    {
        diloco::ShardWriter shard(dir.file("gpt2.bin"), 50257);
        const std::vector<int32_t> ids(5000, 50256);
        shard.append(ids.data(), ids.size());
        shard.finish();
    }
    check_one_line_error(run_diloco("eval --checkpoint " + dir.file("ok") + " --data " +
                                    dir.file("gpt2.bin")),
                         "vocabulary of 50257 tokens differs from the model's 256");

    diloco::test::write_text(dir.file("bad.toml"), "steps = \"many\"\n");
    check_one_line_error(run_diloco("train --config " + dir.file("bad.toml")),
                         dir.file("bad.toml") + ": --steps: 'many' is not a whole number");
    diloco::test::write_text(dir.file("typo.toml"), "stesp = 3\n");
    check_one_line_error(run_diloco("train --config " + dir.file("typo.toml")),
                         dir.file("typo.toml") + ": unknown option 'stesp'");
    check_one_line_error(run_diloco("train --config " + dir.file("none.toml")),
                         dir.file("none.toml") + ": config file not found");

    CHECK(run_diloco("train --help").exit_code == 0);
    CHECK(run_diloco("generate --help").exit_code == 0);
    CHECK(run_diloco("eval --help").exit_code == 0);
    CHECK(run_diloco("").exit_code != 0);
}
