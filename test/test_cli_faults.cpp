// `diloco` as a new user breaks it: impossible numbers, outputs that cannot be written, runs
// that diverge or are already done, corrupt checkpoint metadata. Each is a one-line error, found
// before the first step where it can be, and nothing NaN is saved.
#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/checkpoint.h"
#include "test/helpers.h"
#include "util/files.h"

using diloco::test::run_diloco;
using diloco::test::TempDir;

namespace {

const char* kRun = " --batch 2 --seq 16 --eval-every 0 --warmup 1";

std::string small_run(const TempDir& dir) {
    const std::string data = dir.file("d.txt");
    if (!std::filesystem::exists(data))
        diloco::test::write_text(data, diloco::test::synthetic_text(20000, 5));
    return "train --data " + data + kRun;
}

// One line on stderr naming what it should (CLI11's own errors add "Run with --help"), a failing
// exit code, and no training step run.
void check_early_error(const diloco::test::CliResult& r, const std::string& needle) {
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.exit_code != 0);
    CHECK(r.err.find(needle) != std::string::npos);
    const bool cli11 = r.err.find("Run with --help") != std::string::npos;
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == (cli11 ? 2 : 1));
    CHECK(r.out.find("step ") == std::string::npos);
}

// Rewrites a safetensors file's JSON header (metadata are outside its data CRC).
void edit_header(const std::string& path, const std::function<void(nlohmann::json&)>& edit) {
    const std::string bytes = diloco::read_file(path);
    uint64_t length;
    std::memcpy(&length, bytes.data(), 8);
    nlohmann::json header = nlohmann::json::parse(bytes.substr(8, length));
    edit(header);
    std::string json = header.dump();
    json.append((8 - json.size() % 8) % 8, ' ');
    const uint64_t new_length = json.size();
    diloco::write_file_atomic(path, std::string(reinterpret_cast<const char*>(&new_length), 8) +
                                        json + bytes.substr(8 + length));
}

}  // namespace

TEST_CASE("numbers that make no sense are refused before step 1", "[cli][bad-input]") {
    TempDir dir;
    const std::string run = small_run(dir) + " --steps 4 ";
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"--weight-decay nan", "--weight-decay: 'nan' is not a finite number >= 0"},
        {"--weight-decay inf", "--weight-decay: 'inf' is not a finite number >= 0"},
        {"--weight-decay -0.1", "--weight-decay: '-0.1' is not a finite number >= 0"},
        {"--min-lr-fraction nan", "--min-lr-fraction: 'nan' is not a finite number within [0, 1]"},
        {"--min-lr-fraction -1", "--min-lr-fraction: '-1' is not a finite number within [0, 1]"},
        {"--min-lr-fraction 2", "--min-lr-fraction: '2' is not a finite number within [0, 1]"},
        {"--grad-clip nan", "--grad-clip: 'nan' is not a finite number >= 0"},
        {"--grad-clip -1", "--grad-clip: '-1' is not a finite number >= 0"},
        {"--grad-clip inf", "--grad-clip: 'inf' is not a finite number >= 0"},
        {"--lr 1e30", "--lr: '1e30' is not a finite number within (0, 1]"},
        {"--lr nan", "--lr: 'nan' is not a finite number within (0, 1]"},
        {"--save-every -2", "--save-every: '-2' is not a whole number within 0..1000000000"},
        {"--seed -1", "--seed: '-1' is not a whole number within 0..18446744073709551615"},
        {"--val-batches 0", "--val-batches: '0' is not a whole number within 1..1048576"},
        {"--mode diloco --islands 1 --inner-steps 2 --island-schedule 1-2:0+0",
         "'1-2:0+0' names island 0 twice"},
    };
    for (const auto& [args, needle] : cases) {
        INFO(args);
        check_early_error(run_diloco(run + args), needle);
    }
}

TEST_CASE("generate refuses impossible sampling options", "[cli][bad-input]") {
    TempDir dir;
    REQUIRE(run_diloco(small_run(dir) + " --steps 1 --save " + dir.file("ck")).exit_code == 0);
    const std::string gen = "generate --checkpoint " + dir.file("ck") + " --tokens 2 ";
    check_early_error(run_diloco(gen + "--temperature nan"),
                      "--temperature: 'nan' is not a finite number >= 0");
    check_early_error(run_diloco(gen + "--temperature -1"),
                      "--temperature: '-1' is not a finite number >= 0");
    check_early_error(run_diloco(gen + "--top-k -1"), "--top-k: '-1' is not a whole number");
    check_early_error(run_diloco(gen + "--seed -1"), "--seed: '-1' is not a whole number");
}

TEST_CASE("a --save that cannot be a directory fails before step 1", "[cli][bad-input]") {
    TempDir dir;
    diloco::test::write_text(dir.file("file"), "x");
    const std::string run = small_run(dir) + " --steps 2 --save ";
    check_early_error(run_diloco(run + dir.file("file")), "--save " + dir.file("file"));
    check_early_error(run_diloco(run + dir.file("file") + "/sub"), "cannot create the directory");
    check_early_error(run_diloco(run + "/proc/diloco-test"), "--save /proc/diloco-test");
}

TEST_CASE("metrics that cannot be written are an error", "[cli][bad-input]") {
    TempDir dir;
    auto r = run_diloco(small_run(dir) + " --steps 2 --log /dev/full");
    INFO(r.err);
    CHECK(r.exit_code != 0);
    CHECK(r.err.find("/dev/full: cannot write the metrics log") != std::string::npos);
}

TEST_CASE("resuming a finished run says so", "[cli][bad-input]") {
    TempDir dir;
    const std::string run = small_run(dir) + " --steps 2 --save " + dir.file("ck");
    REQUIRE(run_diloco(run).exit_code == 0);
    check_early_error(run_diloco(run + " --resume " + dir.file("ck")),
                      "the run is already at step 2, nothing to train up to step 2");
}

TEST_CASE("a diverging run stops with a clear error and saves nothing", "[cli][bad-input]") {
    TempDir dir;
    const std::string run = small_run(dir) + " --steps 2 --save ";
    REQUIRE(run_diloco(run + dir.file("a")).exit_code == 0);
    diloco::ModelCheckpoint ck = diloco::load_model(dir.file("a"));
    for (float& p : ck.params) p *= 1e30f;  // finite weights whose logits overflow
    diloco::save_model(dir.file("big"), ck.config, ck.params, {});
    auto r = run_diloco(run + dir.file("b") + " --init " + dir.file("big"));
    INFO(r.out << r.err);
    CHECK(r.exit_code != 0);
    CHECK(r.err.find("step 1: the loss is") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(dir.file("b")));
    CHECK_FALSE(std::filesystem::exists(dir.file("b.steps")));
}

// The save directory is made at the first save: whatever refuses a start before it, an option,
// a combination, a file, an output, leaves no DIR and no DIR.steps behind.
TEST_CASE("a refused start leaves neither --save DIR nor DIR.steps", "[cli][bad-input]") {
    TempDir dir;
    const std::string run = small_run(dir) + " --steps 4 --save " + dir.file("out/ck") + " ";
    const std::vector<std::string> refusals = {
        "--steps 0", "--mode diloco --inner-steps 3",
        "--init " + dir.file("a") + " --resume " + dir.file("b"),
        "--resume " + dir.file("missing"), "--preset gpt5", "--log /dev/full"};
    for (const std::string& refused : refusals) {
        INFO(refused);
        auto r = run_diloco(run + refused);
        INFO(r.err);
        CHECK(r.exit_code != 0);
        CHECK(r.out.find("step ") == std::string::npos);
        CHECK_FALSE(std::filesystem::exists(dir.file("out")));
    }
    // A checkpoint link of an earlier run stays as it was, and its unfinished saves too.
    REQUIRE(run_diloco(small_run(dir) + " --steps 2 --save " + dir.file("ck")).exit_code == 0);
    std::filesystem::create_directories(dir.file("ck.steps/step-00000009"));
    CHECK(run_diloco(small_run(dir) + " --steps 4 --log /dev/full --save " + dir.file("ck"))
              .exit_code != 0);
    CHECK(std::filesystem::read_symlink(dir.file("ck")).string() == "ck.steps/step-00000002");
    CHECK(std::filesystem::is_directory(dir.file("ck.steps/step-00000009")));
}

TEST_CASE("corrupt checkpoint metadata is refused on resume", "[cli][bad-input]") {
    TempDir dir;
    const std::string run = small_run(dir) + " --steps 4 ";
    REQUIRE(run_diloco(run + "--stop-at 2 --save " + dir.file("ck")).exit_code == 0);
    const std::string resume = run + "--resume " + dir.file("bad");
    auto corrupt = [&](const std::string& file, const std::function<void(nlohmann::json&)>& edit) {
        std::filesystem::remove_all(dir.file("bad"));
        std::filesystem::copy(dir.file("ck"), dir.file("bad"),
                              std::filesystem::copy_options::recursive);
        edit_header(dir.file("bad/" + file), edit);
    };
    corrupt("outer.safetensors", [](nlohmann::json& h) { h["__metadata__"]["islands"] = "0"; });
    check_early_error(run_diloco(resume), "islands '0' is not a number of islands");
    corrupt("island-0/state.safetensors",
            [](nlohmann::json& h) { h["__metadata__"]["adamw_steps"] = "4294967298"; });
    check_early_error(run_diloco(resume), "'adamw_steps' = 4294967298 is out of range");
    corrupt("outer.safetensors", [](nlohmann::json& h) {
        h["extra"] = {{"dtype", "F32"}, {"shape", {0}}, {"data_offsets", {0, 0}}};
    });
    check_early_error(run_diloco(resume), "outer.safetensors: unexpected tensor 'extra'");
}

TEST_CASE("a TOML array left open is an error, not its first element", "[cli][bad-input]") {
    TempDir dir;
    diloco::test::write_text(dir.file("a.toml"), "steps = 3\nisland-sizes = [\"1\",\n");
    check_early_error(run_diloco(small_run(dir) + " --config " + dir.file("a.toml")),
                      "a.toml:2: '[' is never closed");
    diloco::test::write_text(dir.file("b.toml"), "preset = \"tiny]\" # [\nsteps = 3]\n");
    check_early_error(run_diloco(small_run(dir) + " --config " + dir.file("b.toml")),
                      "b.toml:2: unmatched ']'");
}
