// scripts/c4.sh and the paper's configs at toy size on the C4 sample of ../shared/data: shards
// dealt by k-means, pre-training on one island, DiLoCo across two under mpirun; and its errors.
#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "test/helpers.h"
#include "test/skip.h"

using Catch::Contains;
using diloco::test::CliResult;
using diloco::test::TempDir;

namespace {

const std::string kScript = std::string(DILOCO_SOURCE_DIR) + "/scripts/c4.sh";
const std::string kBuild = std::filesystem::path(DILOCO_BINARY).parent_path().string();
// The paper's recipe shrunk to seconds; flags after `--` override the config.
const std::string kToy = " --steps 4 -- --preset tiny --inner-steps 2 --batch 2 --seq 32 "
                         "--batch-tokens 128 --warmup 1 --val-batches 1 --eval-every 2";

CliResult c4(const std::string& args) {
    diloco::test::require_mpirun();
    return diloco::test::run_command("OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "
                                     "MPIRUN='timeout -k 5 120 mpirun --oversubscribe' " +
                                     kScript + " --build " + kBuild + " " + args);
}

// The records of a JSON-lines metrics file that have key.
std::vector<nlohmann::json> records_with(const std::string& path, const std::string& key) {
    std::vector<nlohmann::json> out;
    std::istringstream lines(diloco::test::read_text(path));
    for (std::string line; std::getline(lines, line);) {
        nlohmann::json j = nlohmann::json::parse(line);
        if (j.contains(key)) out.push_back(j);
    }
    return out;
}

}  // namespace

TEST_CASE("c4.sh prepares k-means shards, pre-trains, then trains DiLoCo on two islands",
          "[c4][mpi][cli]") {
    const std::string sample =
        diloco::test::shared_data("c4/c4-train.00000-of-01024.first1000.json.gz");
    const std::string gpt2 = diloco::test::shared_data("gpt2");
    TempDir dir;
    const std::string out = dir.file("run");
    const std::string args = "--tokenizer " + gpt2 + " --out " + out +
                             " --islands 2 --pretrain-steps 2 " + sample + kToy;
    CliResult r = c4(args);
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    const auto manifest = nlohmann::json::parse(diloco::test::read_text(out + "/data/manifest.json"));
    CHECK(manifest["islands"] == 2);
    CHECK(manifest["split"] == "cluster");
    CHECK_THAT(r.out, Contains("island 0 of 2 (cluster split)"));
    // Phase 1 trained the pre-training steps, phase 2 its own from the weights phase 1 saved:
    // its first loss is the pre-trained model's, below a fresh model's.
    const auto pretrain = records_with(out + "/pretrain.jsonl", "loss");
    const auto diloco = records_with(out + "/diloco.jsonl", "loss");
    CHECK(pretrain.back()["step"] == 2);
    CHECK(diloco.front()["step"] == 1);
    CHECK(diloco.back()["step"] == 4);
    CHECK(diloco.front()["loss"].get<double>() < pretrain.front()["loss"].get<double>());
    CHECK(std::filesystem::exists(out + "/checkpoint/model.safetensors"));

    // A second run keeps the shards and the pre-training, and trains the DiLoCo phase again.
    const auto shards_time = std::filesystem::last_write_time(out + "/data/manifest.json");
    const auto pretrain_time = std::filesystem::last_write_time(out + "/pretrain/config.json");
    CliResult again = c4(args);
    INFO(again.err);
    CHECK(again.exit_code == 0);
    CHECK(std::filesystem::last_write_time(out + "/data/manifest.json") == shards_time);
    CHECK(std::filesystem::last_write_time(out + "/pretrain/config.json") == pretrain_time);
}

TEST_CASE("the paper's 60M config trains at toy size through its overrides", "[c4][cli]") {
    TempDir dir;
    const std::string text = dir.file("corpus.txt");
    diloco::test::write_text(text, diloco::test::synthetic_text(20000, 3));
    for (const char* config : {"paper-60m-c4.toml", "paper-150m-c4.toml"}) {
        INFO(config);
        CliResult r = diloco::test::run_diloco(
            "train --config " + std::string(DILOCO_SOURCE_DIR) + "/configs/" + config +
            " --data " + text +
            " --preset tiny --steps 2 --inner-steps 2 --batch 2 --seq 32 --batch-tokens 128 "
            "--val-batches 1 --warmup 1 --eval-every 2 --save-every 0");
        INFO(r.err);
        CHECK(r.exit_code == 0);
        // From the config: DiLoCo, and 2 micro-batches of 2 x 32 tokens a step.
        CHECK_THAT(r.out, Contains("mode diloco"));
        CHECK_THAT(r.out, Contains("gradient accumulation: 2 micro-batches of 2 x 32 tokens"));
    }
}

TEST_CASE("c4.sh refuses what it cannot run with a one-line error", "[c4][cli]") {
    TempDir dir;
    const std::string sh = kScript + " --build " + kBuild + " --out " + dir.file("run");
    CliResult no_tokenizer = diloco::test::run_command(sh + " some.json.gz");
    CHECK(no_tokenizer.exit_code == 2);
    CHECK_THAT(no_tokenizer.err, Contains("--tokenizer DIR is required"));
    CliResult no_inputs = diloco::test::run_command(sh + " --tokenizer x");
    CHECK(no_inputs.exit_code == 2);
    CHECK_THAT(no_inputs.err, Contains("no C4 json.gz files given"));
    CliResult bad_islands = diloco::test::run_command(sh + " --tokenizer x --islands 0 a.json.gz");
    CHECK(bad_islands.exit_code == 2);
    CHECK_THAT(bad_islands.err, Contains("'0'"));
    CliResult no_config =
        diloco::test::run_command(sh + " --tokenizer x --config " + dir.file("none.toml") + " a.gz");
    CHECK(no_config.exit_code == 1);
    CHECK_THAT(no_config.err, Contains(dir.file("none.toml") + ": config file not found"));
    CHECK_FALSE(std::filesystem::exists(dir.file("run")));
}
