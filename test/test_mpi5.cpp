// Islands under Open MPI 5 (PyPI's wheel, installed and built against by scripts/mpi5.sh): every
// rank's global parameters equal after each outer step, and the same steps as Open MPI 4.1's run.
#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "test/helpers.h"
#include "test/island_runs.h"
#include "test/skip.h"

using namespace diloco::test;
using namespace diloco::test::islands;

namespace {

const std::string kMpi5Binary = DILOCO_MPI5_BINARY;
const std::string kMpi5Mpirun = DILOCO_MPI5_MPIRUN;

// Skips unless scripts/mpi5.sh has installed the wheel and built build-mpi5 against it.
void require_mpi5() {
    for (const std::string& path : {kMpi5Mpirun, kMpi5Binary})
        if (!std::filesystem::exists(path))
            skip_test(path + " is absent: run scripts/mpi5.sh (Open MPI 5 from PyPI into a venv, "
                             "diloco built against it)");
}

// The checksums of every outer step, each step's checked equal on all `ranks` ranks.
std::vector<uint32_t> outer_checksums(const std::string& log, int ranks) {
    std::vector<uint32_t> out;
    for (const auto& outer : events(log, "outer")) {
        const auto sums = outer.at("param_checksums").get<std::vector<uint32_t>>();
        INFO(log << " outer step " << outer.at("outer_step"));
        REQUIRE(sums.size() == size_t(ranks));
        CHECK(sums == std::vector<uint32_t>(ranks, sums[0]));
        out.push_back(sums[0]);
    }
    return out;
}

// The tiny preset on the built-in corpus, 3 outer steps of H = 4 with Nesterov, under Open MPI 5
// and then under the system's Open MPI 4.1: the outer mean is summed in island order, so the
// MPI must change no bit.
void check_islands_against_mpi4(int islands) {
    require_mpi5();
    require_mpirun();
    TempDir dir;
    const std::string args = "train --mode diloco --islands " + std::to_string(islands) +
                             " --inner-steps 4 --steps 12" + kRun + " --log ";
    require_ok(run_mpi_with(kMpi5Mpirun, kMpi5Binary, islands, args + dir.file("v5.jsonl")));
    require_ok(run_mpi(islands, args + dir.file("v4.jsonl")));
    const std::vector<uint32_t> v5 = outer_checksums(dir.file("v5.jsonl"), islands);
    CHECK(v5.size() == 3);
    CHECK(v5 == outer_checksums(dir.file("v4.jsonl"), islands));
    CHECK(last_eval(dir.file("v5.jsonl")).at("val_loss") ==
          last_eval(dir.file("v4.jsonl")).at("val_loss"));
}

}  // namespace

TEST_CASE("build-mpi5's diloco loads the wheel's libmpi, not the system's", "[mpi5]") {
    require_mpi5();
    const CliResult r = run_command("ldd " + kMpi5Binary);
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    const size_t at = r.out.find("libmpi.so");
    REQUIRE(at != std::string::npos);
    const size_t from = r.out.find("=> ", at) + 3, to = r.out.find(" (", from);
    const std::filesystem::path loaded = r.out.substr(from, to - from);
    const std::filesystem::path venv_lib =
        std::filesystem::path(kMpi5Mpirun).parent_path().parent_path() / "lib";
    REQUIRE(std::filesystem::exists(loaded));
    CHECK(std::filesystem::canonical(loaded).parent_path() ==
          std::filesystem::canonical(venv_lib));
}

TEST_CASE("2 islands under Open MPI 5 keep equal checksums and match Open MPI 4.1's run",
          "[mpi5]") {
    check_islands_against_mpi4(2);
}

TEST_CASE("4 islands under Open MPI 5 keep equal checksums and match Open MPI 4.1's run",
          "[mpi5]") {
    check_islands_against_mpi4(4);
}
