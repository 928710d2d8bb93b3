// Islands on the test hosts of scripts/hosts.sh: network namespaces joined by rate-limited veth
// links, reached by mpirun through scripts/netns-rsh. Skipped where namespaces are not permitted.
#include <catch2/catch.hpp>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "test/helpers.h"
#include "test/skip.h"

using Catch::Contains;
using diloco::test::CliResult;
using diloco::test::run_command;
using diloco::test::TempDir;

namespace {

const std::string kHosts = std::string(DILOCO_SOURCE_DIR) + "/scripts/hosts.sh";

// Makes n hosts for the test's life and removes them after; skips where namespaces cannot be
// made (no root, no CAP_SYS_ADMIN) or mpirun is missing. The hosts have fixed names, so tests
// that run at once (ctest -j) take turns on a file lock.
class TestHosts {
public:
    TestHosts(int n, const std::string& gbps) {
        diloco::test::require_mpirun();
        lock_ = open("/tmp/diloco-test-hosts.lock", O_CREAT | O_RDWR, 0644);
        REQUIRE(lock_ >= 0);
        REQUIRE(flock(lock_, LOCK_EX) == 0);
        if (std::system("ip netns add dlc-probe >/dev/null 2>&1 && ip netns del dlc-probe") != 0)
            diloco::test::skip_test("network namespaces are not permitted here");
        CliResult up = run_command(kHosts + " up " + std::to_string(n) + " --gbps " + gbps);
        INFO(up.err);
        REQUIRE(up.exit_code == 0);
    }
    ~TestHosts() {
        run_command(kHosts + " down");
        close(lock_);  // releases the lock
    }
    std::string mpirun(int ranks, const std::string& args) const {
        return "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout -k 5 120 "
               "mpirun $(" + kHosts + " mpirun-args) -np " + std::to_string(ranks) +
               " -x OMP_NUM_THREADS=1 " + DILOCO_BINARY + " " + args;
    }

private:
    int lock_ = -1;
};

}  // namespace

TEST_CASE("DiLoCo with one island per namespace over 1 Gbit/s links", "[hosts][mpi]") {
    TestHosts hosts(2, "1");
    // Each link is shaped both ways: the host's upload inside it, its download at the bridge.
    CliResult up_link = run_command("ip netns exec dlc-h1 tc qdisc show dev eth0");
    CliResult down_link = run_command("tc qdisc show dev dlc-h1");
    CHECK_THAT(up_link.out, Contains("tbf") && Contains("rate 1Gbit"));
    CHECK_THAT(down_link.out, Contains("tbf") && Contains("rate 1Gbit"));

    CliResult r = run_command(hosts.mpirun(
        2, "train --mode diloco --islands host --steps 4 --inner-steps 2 --batch 2 --seq 32 "
           "--val-batches 1 --eval-every 4"));
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    // Every namespace is a machine of its own, and `--islands host` makes it an island.
    CHECK_THAT(r.out, Contains("rank 0 on h0 (rank 0 of 1 on the machine): island 0"));
    CHECK_THAT(r.out, Contains("rank 1 on h1 (rank 0 of 1 on the machine): island 1"));
    CHECK_THAT(r.out, Contains("mode diloco, 2 islands of 1 rank(s)"));
    CHECK_THAT(r.out, Contains("step     4/4 | val loss"));
    // The probe `diloco supervise --probe` can use: a host answers over its link until it is cut.
    CHECK(run_command(kHosts + " probe 10.77.0.11").exit_code == 0);
    REQUIRE(run_command("ip link set dlc-h1 down").exit_code == 0);
    CHECK(run_command(kHosts + " probe 10.77.0.11").exit_code == 1);
    CHECK(run_command(kHosts + " probe 10.77.0.10").exit_code == 0);
}

TEST_CASE("hosts.sh refuses bad arguments and down removes every host", "[hosts]") {
    TestHosts hosts(1, "0.5");
    for (const char* bad : {"up 0", "up x", "up 2 --gbps 0", "up 2 --gbps -1", "up 2 --mbps 3"}) {
        INFO(bad);
        CliResult r = run_command(kHosts + " " + bad);
        CHECK(r.exit_code == 2);
        CHECK_THAT(r.err, Contains("hosts.sh:"));
    }
    CHECK(run_command("ip netns list").out.find("dlc-h0") != std::string::npos);
    CHECK(run_command(kHosts + " down").exit_code == 0);
    CHECK(run_command("ip netns list").out.find("dlc-h") == std::string::npos);
    CliResult none = run_command(kHosts + " mpirun-args");
    CHECK(none.exit_code == 1);
    CHECK_THAT(none.err, Contains("no hosts are up"));
}

TEST_CASE("a host cut off mid-run: the job goes on with the islands left and takes it back",
          "[faults][hosts][mpi]") {
    // The middle host, so that the island after it is numbered anew on the restart and keeps
    // its progress through its id (--island-ids, each host's place in --hosts).
    TestHosts hosts(3, "1");
    TempDir dir;
    diloco::test::write_text(dir.file("d.txt"), diloco::test::synthetic_text(30000, 9));
    // {hosts}, {np} and {island-ids} are the hosts that answer; no step logged for 20 s stops a job whose
    // mpirun waits for a daemon it cannot reach.
    std::string mca = run_command(kHosts + " mpirun-args").out;
    mca = mca.substr(0, mca.find(" -H "));
    const std::string out = dir.file("out"), err = dir.file("err");
    const pid_t supervisor = diloco::test::start_process(
        "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout -k 5 400 " +
        std::string(DILOCO_BINARY) + " supervise --hosts 10.77.0.10,10.77.0.11,10.77.0.12 " +
        "--probe '" + kHosts + " probe {host}' --min-hosts 2 --poll 1 --stall 20 -- mpirun " +
        mca + " -H {hosts} -np {np} -x OMP_NUM_THREADS=1 " + DILOCO_BINARY + " train --data " +
        dir.file("d.txt") + " --mode diloco --islands host --island-ids {island-ids} " +
        "--inner-steps 10 --steps 300 " +
        "--batch 8 --seq 64 --val-batches 1 --eval-every 300 --save-every 10 --sync-timeout 5 " +
        "--save " + dir.file("ck") + " --log " + dir.file("m.jsonl") + " >" + out + " 2>" + err);
    REQUIRE(diloco::test::wait_for_text(out, "step    15/", supervisor));
    REQUIRE(run_command("ip link set dlc-h1 down").exit_code == 0);
    const bool went_on = diloco::test::wait_for_text(err, "launch 1: 2 of 3 hosts", supervisor);
    REQUIRE(run_command("ip link set dlc-h1 up").exit_code == 0);
    int status = 0;
    waitpid(supervisor, &status, 0);
    const std::string said = diloco::test::read_text(err), printed = diloco::test::read_text(out);
    INFO(said);
    CHECK(went_on);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK_THAT(said, Contains("no answer within 5 s (--sync-timeout) from world rank 1 (island 1)"));
    // The islands left timed out at the sync and kept their round for the restart (so did the
    // island cut off here, whose disk is the others': a real cluster's would not be).
    CHECK_THAT(said, Contains("islands 0, 1 and 2 keep their progress"));
    // On 2 hosts the third is island 1 with id 2, and takes up its own progress.
    CHECK_THAT(printed, Contains("on h2 (rank 0 of 1 on the machine): island 1 (id 2, rank 0"));
    CHECK_THAT(said, Contains("diloco: island 2 resumes its progress at step"));
    CHECK_THAT(said, Contains("diloco supervise: recovered: training again"));
    CHECK_THAT(said, Contains("a host answers again; it rejoins at the next checkpoint"));
    CHECK_THAT(said, Contains("launch 2: 3 of 3 hosts"));
    CHECK_THAT(said, Contains("the job finished after 2 restart(s)"));
    CHECK_THAT(printed, Contains("mode diloco, 2 islands of 1 rank(s)"));
    CHECK_THAT(printed, Contains("step   300/300 | val loss"));
}
