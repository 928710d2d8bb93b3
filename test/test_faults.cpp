// Faults a run must survive: SIGKILL of the whole job in the middle of its saves, many times
// over; every restart resumes from the newest complete checkpoint and the run reaches its end.
#include <catch2/catch.hpp>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <sstream>
#include <string>
#include <thread>

#include "checkpoint/writer.h"
#include "model/checkpoint.h"
#include "test/helpers.h"
#include "test/skip.h"

using Catch::Contains;
using diloco::test::read_text;
using diloco::test::run_command;
using diloco::test::start_process;
using diloco::test::wait_for_text;
using diloco::test::TempDir;

namespace {

// Waits until link ck points somewhere else than before (or the process ends).
bool wait_for_save(const std::string& ck, const std::filesystem::path& before, pid_t pid) {
    for (;;) {
        std::error_code ec;
        const std::filesystem::path now = std::filesystem::read_symlink(ck, ec);
        if (!ec && now != before) return true;
        int status = 0;
        if (waitpid(pid, &status, WNOHANG) == pid) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
}

// Kills the job during its saves `tries` times, each time resuming the last one; then lets it
// run to its end. Every start after the first must resume (its first step line follows the
// checkpoint's step), and the end must come.
void kill_during_saves(const std::string& launch, const TempDir& dir, int tries) {
    const std::string ck = dir.file("ck"), out = dir.file("out"), err = dir.file("err");
    std::mt19937 rng(7);
    int resumed = 0;
    for (int t = 0; t <= tries; t++) {
        const bool last = t == tries;
        const std::string resume = std::filesystem::exists(ck) ? " --resume " + ck : "";
        // The last start saves less often, only to get to the end sooner.
        const pid_t pid = start_process(launch + " --save " + ck + resume +
                                (last ? " --save-every 10" : " --save-every 1") + " >" + out +
                                " 2>" + err);
        // Once this start has saved (the link moved on), every step saves: a random moment
        // after that is inside a save or close to one.
        const auto before = std::filesystem::exists(ck) ? std::filesystem::read_symlink(ck)
                                                        : std::filesystem::path();
        if (!last && wait_for_text(out, "step ", pid) && wait_for_save(ck, before, pid)) {
            std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 400));
            kill(-pid, SIGKILL);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        // The whole job: mpirun starts its ranks in sessions of their own, which the group
        // kill misses; they are the processes training on this test's data (the bracket keeps
        // the pattern from matching the shell that runs it).
        const std::string job = "'[t]rain --data " + dir.file("d.txt") + "'";
        run_command("pkill -KILL -f " + job + "; while pgrep -f " + job +
                    " >/dev/null; do sleep 0.01; done");
        INFO("try " << t << ": " << read_text(err));
        CHECK(read_text(err).find("error") == std::string::npos);
        resumed += !resume.empty() && read_text(out).find("step ") != std::string::npos;
        if (last) {
            REQUIRE(WIFEXITED(status));
            CHECK(WEXITSTATUS(status) == 0);
            CHECK_THAT(read_text(out), Contains("val loss"));
        }
    }
    CHECK(resumed >= tries / 2);  // most tries got past loading the checkpoint
}

const std::string kRun = " --steps 100 --batch 2 --seq 16 --val-batches 1 --eval-every 100 "
                         "--keep 2";

}  // namespace

TEST_CASE("SIGKILL during saves never tears a checkpoint: 20 kills, 20 resumes", "[faults]") {
    TempDir dir;
    diloco::test::write_text(dir.file("d.txt"), diloco::test::synthetic_text(30000, 9));
    kill_during_saves(std::string(DILOCO_BINARY) + " train --data " + dir.file("d.txt") + kRun,
                      dir, 20);
    // --keep 2: the checkpoint and the one before it, nothing half-written beside them.
    int saves = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir.file("ck.steps"))) {
        (void)e;
        saves++;
    }
    CHECK(saves == 2);
}

TEST_CASE("SIGKILL of a two-island job during saves: every restart resumes", "[faults][mpi]") {
    diloco::test::require_mpirun();
    TempDir dir;
    diloco::test::write_text(dir.file("d.txt"), diloco::test::synthetic_text(30000, 9));
    kill_during_saves("OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
                      "OMP_NUM_THREADS=1 mpirun -np 2 --oversubscribe " +
                          std::string(DILOCO_BINARY) + " train --data " + dir.file("d.txt") +
                          " --mode diloco --islands 2 --inner-steps 1" + kRun,
                      dir, 8);
}

TEST_CASE("a --save directory that is not a checkpoint link is refused before step 1",
          "[cli][bad-input]") {
    TempDir dir;
    diloco::test::write_text(dir.file("d.txt"), diloco::test::synthetic_text(30000, 9));
    const std::string train = "train --data " + dir.file("d.txt") + " --batch 2 --seq 16 ";
    const std::string run = train + "--steps 2 ";
    std::filesystem::create_directories(dir.file("old"));
    diloco::test::write_text(dir.file("old/model.safetensors"), "x");
    auto r = diloco::test::run_diloco(run + "--save " + dir.file("old"));
    CHECK(r.exit_code != 0);
    CHECK_THAT(r.err, Contains("--save " + dir.file("old") + ": exists and is not a checkpoint link"));
    CHECK(r.out.find("step ") == std::string::npos);
    auto keep = diloco::test::run_diloco(run + "--keep -1 --save " + dir.file("ck"));
    CHECK(keep.exit_code != 0);
    CHECK_THAT(keep.err, Contains("--keep: '-1' is not a whole number within 0..1048576"));
    // An empty directory becomes the link; a link keeps its old save until the new one.
    std::filesystem::create_directories(dir.file("empty"));
    CHECK(diloco::test::run_diloco(run + "--save " + dir.file("empty")).exit_code == 0);
    CHECK(std::filesystem::is_symlink(dir.file("empty")));
    CHECK(diloco::test::run_diloco(train + "--steps 4 --resume " + dir.file("empty") + " --save " +
                                   dir.file("empty"))
              .exit_code == 0);
    CHECK(std::filesystem::read_symlink(dir.file("empty")).string() ==
          "empty.steps/step-00000004");
}

namespace {

// The pid of world rank `rank` among the processes whose command line matches pattern.
pid_t rank_pid(const std::string& pattern, int rank) {
    const std::string pids = run_command("pgrep -f " + pattern).out;
    std::istringstream in(pids);
    for (pid_t pid; in >> pid;) {
        const std::string env = read_text("/proc/" + std::to_string(pid) + "/environ");
        if (env.find("OMPI_COMM_WORLD_RANK=" + std::to_string(rank) + '\0') != std::string::npos)
            return pid;
    }
    return -1;
}

}  // namespace

TEST_CASE("a stopped island ends the run after --sync-timeout and is named in the error",
          "[faults][mpi]") {
    diloco::test::require_mpirun();
    TempDir dir;
    diloco::test::write_text(dir.file("d.txt"), diloco::test::synthetic_text(30000, 9));
    const std::string out = dir.file("out"), err = dir.file("err");
    const pid_t job = start_process("OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
                            "OMP_NUM_THREADS=1 timeout -k 5 120 mpirun -np 2 --oversubscribe " +
                            std::string(DILOCO_BINARY) + " train --data " + dir.file("d.txt") +
                            " --mode diloco --islands 2 --inner-steps 2 --steps 10000 --batch 2 "
                            "--seq 16 --sync-timeout 3 >" + out + " 2>" + err);
    REQUIRE(wait_for_text(out, "step    10/", job));
    const std::string pattern = "'[t]rain --data " + dir.file("d.txt") + "'";
    const pid_t island1 = rank_pid(pattern, 1);
    REQUIRE(island1 > 0);
    kill(island1, SIGSTOP);  // alive, holding its connections, answering nothing
    const auto stopped = std::chrono::steady_clock::now();
    int status = 0;
    waitpid(job, &status, 0);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - stopped).count();
    run_command("pkill -KILL -f " + pattern);
    INFO(read_text(err));
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) != 0);
    CHECK(WEXITSTATUS(status) != 124);  // not the test's own timeout
    CHECK_THAT(read_text(err), Contains("across islands: no answer within 3 s (--sync-timeout) "
                                        "from world rank 1 (island 1)"));
    CHECK(seconds >= 3);
    CHECK(seconds < 60);
}

TEST_CASE("islands that time out on a stopped one keep their round and a resume goes on from it",
          "[faults][mpi]") {
    diloco::test::require_mpirun();
    TempDir dir;
    diloco::test::write_text(dir.file("d.txt"), diloco::test::synthetic_text(30000, 9));
    const std::string mpirun = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
                               "OMP_NUM_THREADS=1 timeout -k 5 120 mpirun -np 2 --oversubscribe ";
    const std::string train = std::string(DILOCO_BINARY) + " train --data " + dir.file("d.txt") +
                              " --mode diloco --islands 2 --inner-steps 20 --steps 40 --batch 8 "
                              "--seq 64 --val-batches 1 --eval-every 40 --save-every 20 ";
    REQUIRE(run_command(mpirun + train + "--save " + dir.file("unbroken")).exit_code == 0);

    // The checkpoint at step 20 first, so that a slow disk cannot make the test's moment late.
    const std::string ck = " --save " + dir.file("ck") + " ";
    REQUIRE(run_command(mpirun + train + ck + "--stop-at 20").exit_code == 0);
    const std::string out = dir.file("out"), err = dir.file("err");
    const pid_t job = start_process(mpirun + train + ck + "--resume " + dir.file("ck") +
                                    " --sync-timeout 2 >" + out + " 2>" + err);
    REQUIRE(wait_for_text(out, "step    21/", job));
    const std::string pattern = "'[t]rain --data " + dir.file("d.txt") + "'";
    const pid_t island1 = rank_pid(pattern, 1);
    REQUIRE(island1 > 0);
    kill(island1, SIGSTOP);  // steps of about 0.1 s: it cannot have reached the sync at 40
    int status = 0;
    waitpid(job, &status, 0);
    run_command("pkill -KILL -f " + pattern);
    const std::string said = read_text(err);
    INFO(said);
    CHECK(WEXITSTATUS(status) != 0);
    // Island 0 trained to the next sync and waited there in vain: that round is kept beside
    // the checkpoint. (mpirun's SIGCONT before its SIGTERM may let island 1 keep its own.)
    const std::filesystem::path base = std::filesystem::canonical(dir.file("ck"));
    REQUIRE(base.filename() == "step-00000020");
    const std::string kept = base.string() + ".island-0.at-00000040";
    CHECK_THAT(said, Contains("island 0's progress from step 20 to 40 is kept in"));
    REQUIRE(std::filesystem::is_directory(kept));

    // The resume starts island 0 at that sync, the run's last step, and island 1 at the
    // checkpoint; the run ends as an unbroken one does, and the next save removes the progress
    // it has used.
    auto resumed = run_command(mpirun + train + ck + "--resume " + dir.file("ck"));
    INFO(resumed.err);
    CHECK(resumed.exit_code == 0);
    CHECK(read_text(dir.file("ck/model.safetensors")) ==
          read_text(dir.file("unbroken/model.safetensors")));
    CHECK_FALSE(std::filesystem::exists(kept));
}

TEST_CASE("SIGTERM stops a run at a step boundary with a one-line error", "[faults]") {
    TempDir dir;
    diloco::test::write_text(dir.file("d.txt"), diloco::test::synthetic_text(30000, 9));
    const std::string out = dir.file("out"), err = dir.file("err");
    const pid_t run = start_process("exec " + std::string(DILOCO_BINARY) + " train --data " +
                                    dir.file("d.txt") + " --steps 100000 --batch 2 --seq 16 >" +
                                    out + " 2>" + err);
    REQUIRE(wait_for_text(out, "step    20/", run));
    kill(run, SIGTERM);
    int status = 0;
    waitpid(run, &status, 0);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 1);
    CHECK_THAT(read_text(err), Contains("diloco: error: stopped by SIGTERM after step"));
}

TEST_CASE("supervise restarts a job whose island was killed and ends where an unbroken run ends",
          "[faults][mpi]") {
    diloco::test::require_mpirun();
    TempDir dir;
    diloco::test::write_text(dir.file("d.txt"), diloco::test::synthetic_text(30000, 9));
    const std::string mpirun = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
                               "OMP_NUM_THREADS=1 timeout -k 5 300 ";
    const std::string job = "mpirun -np 3 --oversubscribe " + std::string(DILOCO_BINARY) +
                            " train --data " + dir.file("d.txt") +
                            " --mode diloco --islands 3 --inner-steps 8 --steps 64 --batch 2 "
                            "--seq 16 --val-batches 1 --eval-every 64 --save-every 8 ";
    REQUIRE(run_command(mpirun + job + "--save " + dir.file("unbroken")).exit_code == 0);

    const std::string out = dir.file("out"), err = dir.file("err");
    const pid_t supervisor =
        start_process(mpirun + DILOCO_BINARY + " supervise -- " + job + "--save " + dir.file("ck") +
              " --log " + dir.file("m.jsonl") + " >" + out + " 2>" + err);
    REQUIRE(wait_for_text(out, "step    20/", supervisor));
    const pid_t island1 = rank_pid("'[t]rain --data " + dir.file("d.txt") + "'", 1);
    REQUIRE(island1 > 0);
    kill(island1, SIGKILL);
    int status = 0;
    waitpid(supervisor, &status, 0);
    const std::string said = read_text(err);
    INFO(said);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK_THAT(said, Contains("diloco supervise: the job failed (exit status") &&
                         Contains("restarting from step") && Contains("outer round(s) of H = 8"));
    // mpirun stopped the islands alive with SIGTERM: they kept their round, island 1 did not.
    CHECK_THAT(said, Contains("island 0's progress from step") &&
                         Contains("island 2's progress from step") &&
                         Contains("islands 0 and 2 keep their progress"));
    CHECK(said.find("island 1's progress") == std::string::npos);
    CHECK_THAT(said, Contains("diloco supervise: recovered: training again"));
    CHECK_THAT(said, Contains("diloco supervise: the job finished after 1 restart(s)"));
    // Resuming is bitwise: the broken run ends with the unbroken run's model. Unless the kill
    // came between an outer step and island 1's part of the save after it: that save went out
    // without island 1's state, and island 1 started again from the global model.
    if (said.find("holds no state of island 1") == std::string::npos)
        CHECK(read_text(dir.file("ck/model.safetensors")) ==
              read_text(dir.file("unbroken/model.safetensors")));
}

TEST_CASE("an island whose state a save lacks starts again from the global model",
          "[faults][mpi]") {
    diloco::test::require_mpirun();
    TempDir dir;
    diloco::test::write_text(dir.file("d.txt"), diloco::test::synthetic_text(30000, 9));
    const std::string train = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
                              "OMP_NUM_THREADS=1 timeout -k 5 120 mpirun -np 2 --oversubscribe " +
                              std::string(DILOCO_BINARY) + " train --data " + dir.file("d.txt") +
                              " --islands 2 --inner-steps 4 --steps 16 --batch 2 --seq 16 "
                              "--val-batches 1 --save " + dir.file("ck") + " ";
    REQUIRE(run_command(train + "--stop-at 8").exit_code == 0);
    std::filesystem::remove(dir.file("ck/island-1/state.safetensors"));
    auto resumed = run_command(train + "--resume " + dir.file("ck"));
    INFO(resumed.err);
    CHECK(resumed.exit_code == 0);
    CHECK_THAT(resumed.err, Contains("holds no state of island 1 (its rank failed before writing "
                                     "it): the island starts again from the global model"));
    CHECK_THAT(resumed.out, Contains("step    16/16"));
}

TEST_CASE("supervise refuses options that cannot work before starting anything",
          "[cli][bad-input]") {
    const std::pair<const char*, const char*> cases[] = {
        {"-- true", "the command has no --save DIR"},
        {"--grace 0 -- true --save ck", "--grace: '0' is not a whole number within 1..3600"},
        {"--min-hosts 5 --hosts a --probe true -- true --save ck",
         "--min-hosts 5 exceeds the 1 host(s) of --hosts"},
        {"--hosts a,b -- true --save ck", "--hosts needs --probe"},
        {"--stall 5 -- true --save ck", "--stall watches the metrics log"},
        {"-- true --island-ids {island-ids} --save ck", "{island-ids} in the command need --hosts"},
    };
    for (const auto& [args, message] : cases) {
        auto r = diloco::test::run_diloco(std::string("supervise ") + args);
        INFO(args << ": " << r.err);
        CHECK(r.exit_code != 0);
        CHECK_THAT(r.err, Contains(message));
        CHECK(r.err.find("launch") == std::string::npos);  // nothing was started
    }
}

namespace {

// Runs `train` until its stdout shows step `after`, stops it with SIGTERM and returns its stderr.
std::string stop_after(const std::string& train, int after, const TempDir& dir) {
    const std::string out = dir.file("out"), err = dir.file("err");
    std::filesystem::remove(out);  // an earlier run's lines must not answer for this one
    const pid_t run = start_process("exec " + train + " >" + out + " 2>" + err);
    char line[32];
    std::snprintf(line, sizeof line, "step %5d/", after);
    REQUIRE(wait_for_text(out, line, run));
    kill(run, SIGTERM);
    int status = 0;
    waitpid(run, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 1);
    return read_text(err);
}

}  // namespace

TEST_CASE("one island stopped by SIGTERM keeps its round only beside a save of its last outer step",
          "[faults]") {
    TempDir dir;
    diloco::test::write_text(dir.file("d.txt"), diloco::test::synthetic_text(30000, 9));
    const std::string train = std::string(DILOCO_BINARY) + " train --data " + dir.file("d.txt") +
                              " --mode diloco --islands 1 --inner-steps 50 --steps 300 --batch 4 "
                              "--seq 32 --val-batches 1 --eval-every 300 ";
    // No save at step 50: nothing to keep the round beside, and the run says so.
    const std::string unsaved = stop_after(train + "--save " + dir.file("a"), 60, dir);
    INFO(unsaved);
    CHECK_THAT(unsaved, Contains("diloco: error: stopped by SIGTERM after step"));
    CHECK_THAT(unsaved, Contains("is not kept: step 50 was not saved (--save-every)"));

    // A save every outer step: the round is kept, and the resume ends bitwise where an unbroken
    // run ends (unless the stop fell on a step that closed a round: then there is nothing).
    REQUIRE(run_command(train + "--save " + dir.file("unbroken")).exit_code == 0);
    const std::string saved = train + "--save-every 50 --save " + dir.file("b");
    const std::string said = stop_after(saved, 60, dir);
    INFO(said);
    const size_t at = said.find("after step ");
    REQUIRE(at != std::string::npos);
    const int stopped = std::stoi(said.substr(at + 11));
    if (stopped % 50 != 0) CHECK_THAT(said, Contains(" to " + std::to_string(stopped) + " is kept in"));
    auto resumed = run_command(saved + " --resume " + dir.file("b"));
    INFO(resumed.err);
    CHECK(resumed.exit_code == 0);
    if (stopped % 50 != 0)
        CHECK_THAT(resumed.err, Contains("diloco: island 0 resumes its progress at step " +
                                         std::to_string(stopped)));
    CHECK(read_text(dir.file("b/model.safetensors")) ==
          read_text(dir.file("unbroken/model.safetensors")));
}

TEST_CASE("progress that does not fit its checkpoint is refused on resume, naming it",
          "[faults][bad-input]") {
    TempDir dir;
    diloco::test::write_text(dir.file("d.txt"), diloco::test::synthetic_text(30000, 9));
    const std::string train = "train --data " + dir.file("d.txt") +
                              " --mode diloco --islands 1 --inner-steps 4 --steps 16 --batch 2 "
                              "--seq 16 --val-batches 1 --save " + dir.file("ck") + " ";
    REQUIRE(diloco::test::run_diloco(train + "--stop-at 8").exit_code == 0);
    const std::string base = std::filesystem::canonical(dir.file("ck")).string();
    const diloco::ModelCheckpoint model = diloco::load_model(base);
    // Progress at step `step` with this metadata, and the checkpoint's state (of step 8).
    auto craft = [&](int step, std::map<std::string, std::string> meta) {
        const std::string progress = diloco::progress_dir(base, 0, step);
        std::filesystem::remove_all(progress);
        meta["diloco_step"] = std::to_string(step);
        diloco::save_model(progress, model.config, model.params, meta);
        std::filesystem::copy_file(base + "/island-0/state.safetensors",
                                   progress + "/state.safetensors");
        return progress;
    };
    const std::map<std::string, std::string> round = {
        {"base_step", "8"}, {"round_loss", "3.5"}, {"round_seconds", "0.1"}};
    const struct {
        int step;
        std::map<std::string, std::string> meta;
        std::string error;
    } cases[] = {
        {10, {}, "not the progress of an island past step 8"},
        {10, {{"base_step", "4"}, {"round_loss", "1"}, {"round_seconds", "1"}},
         "not the progress of an island past step 8"},
        {10, {{"base_step", "8"}, {"round_loss", "nan"}, {"round_seconds", "1"}},
         "not the progress of an island past step 8"},
        {13, round, "step 13 is not within the round after step 8 (H = 4)"},
        {10, round, "parameters and state come from different steps"},
    };
    for (const auto& c : cases) {
        const std::string progress = craft(c.step, c.meta);
        auto r = diloco::test::run_diloco(train + "--resume " + dir.file("ck"));
        INFO(c.error << ": " << r.err);
        CHECK(r.exit_code != 0);
        CHECK_THAT(r.err, Contains(progress + ": " + c.error));
        CHECK(r.out.find("step    9/") == std::string::npos);
        std::filesystem::remove_all(progress);
    }
}
