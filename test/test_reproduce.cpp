// Tests of scripts/reproduce.sh as a user runs it, at a toy size: the paper's three rows under
// mpirun, summary.json and the plot, and an interrupted reproduce that keeps its finished rows.
#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "test/helpers.h"
#include "test/skip.h"

using diloco::test::CliResult;
using diloco::test::TempDir;

namespace {

size_t count_of(const std::string& text, const std::string& needle) {
    size_t n = 0;
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
        n++;
    return n;
}

CliResult reproduce(const TempDir& dir) {
    const std::string build = std::filesystem::path(DILOCO_BINARY).parent_path().string();
    return diloco::test::run_command(
        "timeout -k 5 300 " DILOCO_SOURCE_DIR "/scripts/reproduce.sh --rows paper --pretrain 4"
        " --steps 20 --batch 2 --seq 16 --data " + dir.file("d.txt") + " --build " + build +
        " --out " + dir.file("runs"));
}

}  // namespace

TEST_CASE("reproduce: the paper's rows, then a rerun keeps what finished", "[cli][mpi]") {
    diloco::test::require_mpirun();
    if (std::system("/usr/bin/python3 -c 'import matplotlib' >/dev/null 2>&1") != 0)
        diloco::test::skip_test("python3-matplotlib is not installed");
    TempDir dir;
    diloco::test::write_text(dir.file("d.txt"), diloco::test::synthetic_text(60000, 11));

    CliResult first = reproduce(dir);
    INFO("stdout: " << first.out << "\nstderr: " << first.err);
    REQUIRE(first.exit_code == 0);
    CHECK(count_of(first.out, "kept from an earlier run") == 0);
    const auto rows = nlohmann::json::parse(diloco::test::read_text(dir.file("runs/summary.json")));
    REQUIRE(rows.size() == 3);
    CHECK(rows[0].at("mode") == "local");
    CHECK(rows[1].at("mode") == "ddp");
    CHECK(rows[2].at("mode") == "diloco");
    for (const auto& row : rows) CHECK(row.at("steps") == 20);
    // ddp sends every step what DiLoCo sends every H = 10 steps.
    CHECK(rows[1].at("bytes_across").get<double>() ==
          Approx(10 * rows[2].at("bytes_across").get<double>()));
    CHECK(std::filesystem::file_size(dir.file("runs/perplexity.png")) > 0);

    // Cut the DiLoCo row's log as if the run had been stopped: only that row runs again.
    const std::string log = diloco::test::read_text(dir.file("runs/diloco-4.txt"));
    const size_t last_line = log.rfind('\n', log.size() - 2) + 1;
    diloco::test::write_text(dir.file("runs/diloco-4.txt"), log.substr(0, last_line));
    const std::string ddp_log = diloco::test::read_text(dir.file("runs/ddp-4.jsonl"));
    CliResult second = reproduce(dir);
    INFO("second stdout: " << second.out);
    REQUIRE(second.exit_code == 0);
    CHECK(count_of(second.out, "kept from an earlier run") == 3);
    CHECK(diloco::test::read_text(dir.file("runs/ddp-4.jsonl")) == ddp_log);
    // The rerun ends on the same final evaluation (step lines differ only in their timings).
    const std::string rerun = diloco::test::read_text(dir.file("runs/diloco-4.txt"));
    CHECK(rerun.substr(rerun.rfind('\n', rerun.size() - 2) + 1) == log.substr(last_line));
}
