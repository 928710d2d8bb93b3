// bench/gpu_check.sh where no GPU is needed: its argument handling, --pack's refusals, the table
// it prints (from a log directory written here), its islands stage's rows run on the CPU with the
// table read from their logs, and bench_train's argument checks where the build has CUDA.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <string>
#include <utility>

#include "test/helpers.h"
#include "test/island_runs.h"
#include "test/skip.h"

using namespace diloco::test;

namespace {

const std::string kScript = std::string(DILOCO_SOURCE_DIR) + "/bench/gpu_check.sh";

// Logs in the layout gpu_check.sh writes, with figures chosen so that each target's verdict
// is known: MFU 41.0% at B=64 (met), twice PyTorch's tokens/s (met), cuDNN forward 250 TFLOP/s
// (not met), a memory-bound kernel at 69.5% of copy (not met), one failed GPU test.
void write_logs(const TempDir& logs) {
    write_text(logs.file("stages.txt"), "configure|ok|10\nbuild|ok|100\ntests|FAIL (rc 1)|20\n");
    write_text(logs.file("gpu.txt"), "NVIDIA H200, 580.159.04, 143771 MiB\n");
    write_text(logs.file("tests.xml"),
               "<testsuites><testsuite name=\"diloco_cuda_tests\">\n"
               "<testcase name=\"attention paths agree\" time=\"1.5\"/>\n"
               "<testcase name=\"model matches the CPU\" time=\"2.0\"><failure message=\"x\">"
               "FAILED: CHECK( rel &lt; 1e-2 )</failure></testcase>\n"
               "</testsuite></testsuites>\n");
    write_text(logs.file("bench_bf16.log"),
               "ceilings: copy 4300.0 GB/s (device to device, 1 GiB), matmul 790.0 TFLOP/s\n"
               "layernorm_forward                      0.100 ms    3500.0 GB/s    81.4% of copy\n"
               "adamw_update                           0.500 ms    2988.5 GB/s    69.5% of copy\n"
               "attention_forward (cudnn)              0.100 ms     250.0 TFLOP/s  31.6% of matmul\n");
    write_text(logs.file("train.log"),
               "bench_train preset=gpt2-124m bf16 attention=cudnn B=64 T=1024 ms_per_step=100.00 "
               "tokens_per_s=655360 mfu=41.0% mem_gib=30.0 loss=10.9->10.8\n"
               "bench_train preset=gpt2-124m bf16 attention=cudnn B=512 T=1024 out_of_memory\n");
    write_text(logs.file("torch.log"),
               "torch_gpt2 device=cuda compile=on B=64 T=1024 ms_per_step=200.00 "
               "tokens_per_s=327680 loss=10.9->10.8\n");
}

bool has_line(const std::string& text, const std::string& a, const std::string& b) {
    size_t start = 0;
    while (start < text.size()) {
        size_t end = text.find('\n', start);
        if (end == std::string::npos) end = text.size();
        const std::string line = text.substr(start, end - start);
        if (line.find(a) != std::string::npos && line.find(b) != std::string::npos) return true;
        start = end + 1;
    }
    return false;
}

}  // namespace

TEST_CASE("gpu_check.sh refuses unknown arguments and a table without logs", "[gpu_check]") {
    CliResult r = run_command(kScript + " --bogus");
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("usage:") != std::string::npos);
    TempDir empty;
    r = run_command(kScript + " --table " + empty.path());
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("stages.txt") != std::string::npos);
    CHECK(r.out.empty());
}

TEST_CASE("gpu_check.sh --pack names the venv that lacks the cudnn-frontend headers",
          "[gpu_check]") {
    TempDir venv;
    const CliResult r = run_command(kScript + " --pack " + venv.path());
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("no cudnn_frontend.h under " + venv.path()) != std::string::npos);
    CHECK(r.out.empty());
}

TEST_CASE("gpu_check.sh's table reads each figure and judges each target", "[gpu_check]") {
    TempDir logs;
    write_logs(logs);
    const CliResult r = run_command(kScript + " --table " + logs.path());
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(has_line(r.out, "model matches the CPU", "FAIL"));
    CHECK(has_line(r.out, "CHECK( rel < 1e-2 )", ""));
    CHECK(has_line(r.out, "1 of 2 passed", ""));
    CHECK(has_line(r.out, "diloco cudnn", "2.00x"));  // 655,360 over 327,680 tokens/s
    CHECK(has_line(r.out, "diloco cudnn", "out of memory"));
    CHECK(has_line(r.out, "torch    ", "20.5%"));  // 41.0% at half its tokens/s
    CHECK(has_line(r.out, "MFU (cudnn)", "41.0%"));
    CHECK(has_line(r.out, "MFU (cudnn)", " met"));
    CHECK(has_line(r.out, "over PyTorch's (cudnn)", " met"));
    CHECK(has_line(r.out, "cuDNN attention forward", "NOT MET"));
    CHECK(has_line(r.out, "worst (adamw_update)", "69.5% of copy"));
    CHECK(has_line(r.out, "worst (adamw_update)", "NOT MET"));
    CHECK(has_line(r.out, "logits vs transformers", "not measured"));

    write_text(logs.file("logits.log"),
               "check_logits device=cuda precision=bf16 windows=2 T=1024 rel_error=0.0123 "
               "max_abs_diff=0.04 tolerance=0.03 result=ok\n");
    const CliResult again = run_command(kScript + " --table " + logs.path());
    CHECK(has_line(again.out, "logits vs transformers", "0.0123"));
    CHECK(has_line(again.out, "logits vs transformers", "<= 0.03  met"));
}

TEST_CASE("bench_train refuses bad arguments with a one-line error", "[gpu_check]") {
#ifndef DILOCO_BENCH_TRAIN
    skip_test("this build has no CUDA benches");
#else
    const std::pair<const char*, const char*> cases[] = {
        {"--batch 16,0", "--batch '0': expected a positive integer"},
        {"--batch max,x", "--batch 'x': expected a positive integer"},
        {"--attention slow", "--attention 'slow': expected cudnn, flash, plain, all or best"},
        {"--seq 2048", "--seq 2048 is longer than gpt2-124m's context"},
        {"--preset nope", "unknown preset 'nope'"},
        {"--steps -1", "--steps '-1': expected a positive integer"},
        {"--warmup", "--warmup needs a value"},
    };
    for (const auto& [args, message] : cases) {
        INFO(args);
        const CliResult r = run_command(std::string(DILOCO_BENCH_TRAIN) + " " + args);
        CHECK(r.exit_code == 1);
        CHECK(r.err.rfind(std::string("bench_train: ") + message, 0) == 0);
        CHECK(r.out.empty());
    }
#endif
}

namespace {

const std::string kIslands = std::string(DILOCO_SOURCE_DIR) + "/bench/gpu_islands.sh";
const std::string kIslandsTable = std::string(DILOCO_SOURCE_DIR) + "/bench/islands_table.py";

// The table's line of a row: the line that starts with two spaces and the row's name.
std::string table_line(const std::string& table, const std::string& row) {
    const size_t at = table.find("\n  " + row + " ");
    return at == std::string::npos ? "" : table.substr(at + 1, table.find('\n', at + 1) - at - 1);
}

std::string fixed(double value, int decimals) {
    char text[32];
    std::snprintf(text, sizeof text, "%.*f", decimals, value);
    return text;
}

}  // namespace

TEST_CASE("gpu_islands.sh refuses bad arguments before it runs or writes anything",
          "[gpu_check]") {
    TempDir dir;
    const std::string out = " --out " + dir.file("out");
    const std::string binary = std::string(" --diloco ") + DILOCO_BINARY;
    const std::string ok = binary + out + " --mpirun /bin/true";  // each case spoils one thing
    const std::pair<std::string, std::string> cases[] = {
        {binary + " --cpu", "usage:"},
        {out + " --diloco /nonexistent", "--diloco /nonexistent: not an executable"},
        {ok + " --rows diloco-4,bogus", "--rows: unknown row 'bogus'"},
        {ok + " --budget 0", "--budget '0': expected a positive number of seconds"},
        {ok + " --mpirun /nonexistent/mpirun", "--mpirun /nonexistent/mpirun: not found"},
        {ok + " --data " + dir.file("none"), "--data " + dir.file("none") + ": no such"},
        {ok + " --budget", "--budget needs a value"},
        {ok + " --bogus", "usage:"},
    };
    for (const auto& [args, message] : cases) {
        INFO(args);
        const CliResult r = run_command(kIslands + args);
        CHECK(r.exit_code == 2);
        CHECK(r.err.find(message) != std::string::npos);
        CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
        CHECK(r.out.empty());
        CHECK(!std::filesystem::exists(dir.file("out")));
    }
}

TEST_CASE("gpu_islands.sh's CPU rows: the table reads their logs and tells matched checksums "
          "from a mismatch", "[gpu_check]") {
    require_mpirun();
    TempDir dir;
    const std::string out = dir.file("islands");
    const CliResult r = run_command(kIslands + " --cpu --rows diloco-4,cpu+gpu --diloco " +
                                    DILOCO_BINARY + " --out " + out);
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    const std::string row = table_line(r.out, "diloco-4");
    CHECK(row.find(" ok ") != std::string::npos);
    CHECK(row.find("matched (2)") != std::string::npos);
    // Its loss and tokens/s per island, as the log has them: tokens over 4 islands and wall time.
    const std::string log = out + "/diloco-4.jsonl";
    const auto eval = islands::last_eval(log);
    const double tokens = islands::events(log, "step").back().at("tokens").get<double>();
    CHECK(row.find(fixed(eval.at("val_loss").get<double>(), 4)) != std::string::npos);
    CHECK(row.find(fixed(tokens / 4 / eval.at("wall_s").get<double>(), 0)) != std::string::npos);
    // The mixed row runs cpu,cpu where the binary has --island-devices, else says it has not.
    const std::string mixed = table_line(r.out, "cpu+gpu");
    const bool has_option = run_diloco("train --help").out.find("--island-devices") !=
                            std::string::npos;
    CHECK(mixed.find(has_option ? "matched (2)" : "option missing") != std::string::npos);

    // One rank's checksum changed at the second outer step: the table says so and fails.
    std::string text;
    int outer = 0;
    for (auto record : islands::records(log)) {
        if (record.at("event") == "outer" && ++outer == 2) record["param_checksums"][3] = 12345;
        text += record.dump() + "\n";
    }
    write_text(log, text);
    const CliResult bad = run_command("python3 " + kIslandsTable + " " + out);
    CHECK(bad.exit_code == 1);
    CHECK(table_line(bad.out, "diloco-4").find("MISMATCH at outer step 2") != std::string::npos);
}

TEST_CASE("gpu_islands.sh's mixed row says when diloco lacks --island-devices", "[gpu_check]") {
    TempDir dir;
    const std::string fake = dir.file("diloco");
    write_text(fake, "#!/bin/sh\necho 'Usage: diloco train [OPTIONS]'\n");
    std::filesystem::permissions(fake, std::filesystem::perms::owner_all);
    const CliResult r = run_command(kIslands + " --rows cpu+gpu --mpirun /bin/true --diloco " +
                                    fake + " --out " + dir.file("out"));
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
    CHECK(table_line(r.out, "cpu+gpu").find("option missing") != std::string::npos);
    CHECK(r.out.find("has no --island-devices") != std::string::npos);
}

TEST_CASE("gpu_check.sh --pack names a missing diloco before it touches the packed folder",
          "[gpu_check]") {
    TempDir venv;
    const std::string include = venv.path() + "/lib/python3.11/site-packages/include";
    std::filesystem::create_directories(include);
    write_text(include + "/cudnn_frontend.h", "");
    const CliResult r = run_command(kScript + " --pack --diloco /nonexistent/diloco " +
                                    venv.path());
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("pack: no /nonexistent/diloco to tokenize the C4 sample") !=
          std::string::npos);
    CHECK(r.out.empty());
    CHECK(run_command(kScript + " --pack --diloco").exit_code == 2);
    CHECK(run_command(kScript + " --pack " + venv.path() + " extra").exit_code == 2);
}
