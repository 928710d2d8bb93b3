// Tests of Streaming DiLoCo and compressed outer gradients through the CLI: fragments cover the
// parameters once, F = 1 without overlap is plain DiLoCo bit for bit, F = 2 takes each fragment's
// mean, overlapped and compressed runs learn, keep every rank's global model identical and count
// their bytes by the codec's formula.
#include <catch2/catch.hpp>
#include <set>

#include "comm/outer_sync.h"
#include "model/layout.h"
#include "optim/diloco.h"
#include "test/island_runs.h"

using namespace diloco::test::islands;
using diloco::test::run_diloco;
using diloco::test::run_mpi;
using diloco::test::TempDir;

namespace {

const char* kTwoIslands = "train --mode diloco --islands 2 --inner-steps 4 --steps 16";
const double kMargin = 1.0;

// The run learned: its last validation loss lies a clear margin below its first step's
// training loss (about ln 256 = 5.55 for an untrained byte model).
void check_learned(const std::string& log) {
    const double first = losses(log).front();
    const double last = last_eval(log).at("val_loss").get<double>();
    INFO("first step's loss " << first << ", last validation loss " << last);
    CHECK(last < first - kMargin);
}

// Outer reports of a run's log: (step, fragment) of each merged sync.
std::vector<std::pair<int, int>> syncs(const std::string& log) {
    std::vector<std::pair<int, int>> out;
    for (const auto& r : events(log, "outer"))
        out.push_back({r.at("step").get<int>(), r.value("fragment", 0)});
    return out;
}

}  // namespace

TEST_CASE("fragments cover every parameter exactly once", "[streaming]") {
    for (const char* preset : {"tiny", "gpt2-124m"}) {
        const diloco::ParamLayout layout =
            diloco::build_layout(diloco::preset_config(preset, 50257));
        const int layers = static_cast<int>(layout.blocks.size());
        for (int f = 1; f <= layers; f++) {
            auto ranges = diloco::fragment_ranges(layout, f);
            REQUIRE(ranges.size() == size_t(f));
            CHECK(ranges.front().first == 0);
            CHECK(ranges.back().second == layout.total);
            for (int i = 0; i < f; i++) {
                CHECK(ranges[i].first < ranges[i].second);
                if (i > 0) CHECK(ranges[i].first == ranges[i - 1].second);
            }
            // Every tensor inside one fragment: none is split between two.
            for (const auto& tensor : layout.tensors) {
                int holders = 0;
                for (const auto& [begin, end] : ranges)
                    holders += tensor.offset >= begin && tensor.offset + tensor.size <= end;
                CHECK(holders == 1);
            }
        }
    }
}

TEST_CASE("one fragment, no overlap, alpha 0 is plain DiLoCo bit for bit", "[streaming]") {
    TempDir dir;
    const std::string common = std::string(kTwoIslands) + corpus(dir) + kRun;
    require_ok(run_mpi(2, common + " --save " + dir.file("plain") + " --log " +
                              dir.file("plain.jsonl")));
    require_ok(run_mpi(2, common + " --fragments 1 --overlap 0 --merge-alpha 0 --save " +
                              dir.file("stream") + " --log " + dir.file("stream.jsonl")));
    CHECK(losses(dir.file("plain.jsonl")) == losses(dir.file("stream.jsonl")));
    CHECK(params(dir.file("plain")) == params(dir.file("stream")));
    // And streaming proper is not: two fragments change the trajectory.
    require_ok(run_mpi(2, common + " --fragments 2 --save " + dir.file("two")));
    CHECK(params(dir.file("plain")) != params(dir.file("two")));
}

TEST_CASE("two fragments with outer lr 1 and momentum 0 take each fragment's mean",
          "[streaming]") {
    TempDir dir;
    const std::string common = corpus(dir) + kRun + " --islands 2 --steps 4";
    // H = 4, F = 2: fragment 1 syncs after step 2, before any island has restarted from a
    // global fragment, so the islands there are what local training gives at step 2.
    require_ok(run_mpi(2, "train --mode local --stop-at 2" + common + " --save " + dir.file("l")));
    require_ok(run_mpi(2, "train --mode diloco --inner-steps 4 --fragments 2" + std::string(kMean) +
                              common + " --save " + dir.file("d")));
    const std::vector<float> a = params(dir.file("l/island-0")), b = params(dir.file("l/island-1"));
    const std::vector<float> global = params(dir.file("d")), mean = weighted_mean({a, b}, {1, 1});
    const auto [begin, end] = diloco::fragment_ranges(
        diloco::build_layout(diloco::preset_config("tiny", 256)), 2)[1];
    REQUIRE(end > begin);
    bool islands_differ = false;
    for (size_t j = begin; j < end; j++) {
        islands_differ = islands_differ || a[j] != b[j];
        if (global[j] != mean[j]) FAIL("parameter " << j << ": " << global[j] << " != " << mean[j]);
    }
    CHECK(islands_differ);
    // Fragment 0 synced later, after step 4: not what either island held at step 2.
    CHECK(!std::equal(global.begin(), global.begin() + begin, a.begin()));
}

TEST_CASE("fragments sync at staggered steps and overlap keeps ranks identical",
          "[streaming]") {
    TempDir dir;
    require_ok(run_mpi(4, std::string(kTwoIslands) + corpus(dir) + kRun +
                              " --fragments 2 --overlap 1 --merge-alpha 0.5 --log " +
                              dir.file("s.jsonl")));
    // H = 4, F = 2: fragment 1 starts at steps 2, 6, 10, 14 and fragment 0 at 4, 8, 12, 16;
    // each merges one step later, the last at the end of the run.
    const std::vector<std::pair<int, int>> expected = {{3, 1},  {5, 0},  {7, 1},  {9, 0},
                                                       {11, 1}, {13, 0}, {15, 1}, {16, 0}};
    CHECK(syncs(dir.file("s.jsonl")) == expected);
    for (const auto& r : events(dir.file("s.jsonl"), "outer")) {
        auto sums = r.at("param_checksums");
        for (const auto& s : sums) CHECK(s == sums[0]);
    }
    check_learned(dir.file("s.jsonl"));
}

TEST_CASE("compressed outer gradients count the codec's bytes", "[streaming]") {
    TempDir dir;
    const size_t n = params_count_of_tiny();
    for (diloco::Codec codec : {diloco::Codec::bf16, diloco::Codec::int8, diloco::Codec::int4}) {
        const std::string log = dir.file(std::string(codec_name(codec)) + ".jsonl");
        require_ok(run_mpi(2, std::string(kTwoIslands) + corpus(dir) + kRun +
                                  " --error-feedback --outer-prune 0.25 --outer-codec " +
                                  codec_name(codec) + " --log " + log));
        auto last = last_eval(log);
        CHECK(last.at("bytes_sent").get<double>() ==
              4.0 * double(diloco::island_bytes_sent(n, 2, 1, 0, codec) +
                           diloco::island_bytes_sent(n, 2, 1, 1, codec)));
        check_learned(log);
    }
}

TEST_CASE("bad streaming and codec options are clear errors", "[streaming]") {
    TempDir dir;
    const std::string base = "train --mode diloco --inner-steps 4 --steps 16" + corpus(dir) + kRun;
    const std::pair<const char*, const char*> cases[] = {
        {" --fragments 5", "--fragments 5 must be in 1..4"},
        {" --fragments 2 --overlap 2", "--overlap 2 must be in 0..1"},
        {" --merge-alpha 1.5", "--merge-alpha: '1.5' is not a finite number within [0, 1]"},
        {" --outer-codec int3", "int3"},
        {" --outer-prune 1", "--outer-prune: '1' is not a finite number within [0, 1)"},
        {" --overlap 1 --save-every 8", "not with --overlap > 0"},
    };
    for (const auto& [flags, message] : cases) {
        auto r = run_diloco(base + flags);
        INFO(flags << ": " << r.err);
        CHECK(r.exit_code != 0);
        CHECK_THAT(r.err, Catch::Contains(message));
    }
}

TEST_CASE("a simulated link delays every sync between islands", "[streaming]") {
    TempDir dir;
    // Two islands, H = 4, 16 steps: 4 syncs of 3 collectives each (notes, reduce-scatter,
    // all-gather), each paying 100 ms of latency before training may go on.
    require_ok(run_mpi(2, std::string(kTwoIslands) + corpus(dir) + kRun +
                              " --wan-latency-ms 100 --wan-gbps 10 --log " + dir.file("w.jsonl")));
    auto last = last_eval(dir.file("w.jsonl"));
    CHECK(last.at("wait_s").get<double>() >= 4 * 3 * 0.1);
    CHECK(last.at("wall_s").get<double>() >= 4 * 3 * 0.1);
    CHECK(last.at("wan_latency_ms").get<double>() == 100);
    auto bad = run_diloco(std::string("train --wan-gbps -1") + corpus(dir));
    CHECK(bad.exit_code != 0);
    CHECK_THAT(bad.err, Catch::Contains("--wan-gbps"));
}
