// Every numeric option of every subcommand against an empty, negative, zero, infinite, NaN and
// huge value: accepted where its range holds the value, else one line naming the option and
// the value, a non-zero exit and nothing on disk. The waits that a value could make unbounded.
#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <future>
#include <limits>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "test/helpers.h"
#include "util/parse.h"

using Catch::Matchers::Contains;
using diloco::test::CliResult;
using diloco::test::run_command;
using diloco::test::TempDir;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// A numeric option's documented range. kind: i (an integer), u (unsigned 64-bit), f (float),
// d (double); max = kInf: no upper bound.
struct OptionRange {
    const char* flag;
    char kind;
    double min, max;
    bool min_open = false, max_open = false;
};

// A subcommand with inputs that do not exist, so that a run whose options are all accepted
// stops at once on them, with `accepted` in its error. The option goes between args and tail.
struct Command {
    std::string args;
    std::string accepted;
    std::vector<OptionRange> options;
    std::string tail = "";
};

const char* const kProbes[] = {"", "-1", "0", "inf", "nan", "huge"};

// Whether the option accepts the probe, by its range and its type's own range.
bool legal(const OptionRange& o, const std::string& probe) {
    if (probe.empty() || probe == "inf" || probe == "nan") return false;
    const bool whole = o.kind == 'i' || o.kind == 'u';
    double v = 0;
    if (probe == "huge") {
        if (whole) return false;  // 1e20 is past 64 bits
        v = 1e300;
        if (o.kind == 'f') return false;  // past a float
    } else {
        v = std::stod(probe);
    }
    return (o.min_open ? v > o.min : v >= o.min) && (o.max_open ? v < o.max : v <= o.max);
}

std::string value_of(const OptionRange& o, const std::string& probe) {
    if (probe != "huge") return probe;
    return o.kind == 'i' || o.kind == 'u' ? "99999999999999999999" : "1e300";
}

std::vector<Command> commands() {
    const double week = 7 * 24 * 3600;
    const OptionRange island_timeout{"--island-timeout", 'd', 0, week, true};
    return {
        {"train --data missing.txt --save ck --log log.jsonl",
         "missing.txt: cannot open",
         {{"--val-fraction", 'd', 0, 1, true, true},
          {"--batch", 'i', 1, 65536},
          {"--seq", 'i', 1, 1 << 20},
          {"--grad-accum", 'i', 1, 1 << 20},
          {"--batch-tokens", 'u', 0, double(uint64_t(1) << 50)},
          {"--steps", 'i', 1, 1e9},
          {"--lr", 'f', 0, 1, true},
          {"--warmup", 'i', 0, 1e9},
          {"--min-lr-fraction", 'f', 0, 1},
          {"--weight-decay", 'f', 0, kInf},
          {"--grad-clip", 'f', 0, kInf},
          {"--seed", 'u', 0, kInf},
          {"--drop-prob", 'd', 0, 1, false, true},
          {"--wan-gbps", 'd', 0, kInf},
          {"--wan-latency-ms", 'd', 0, kInf},
          {"--sync-timeout", 'd', 0, week},
          {"--inner-steps", 'i', 1, 1e9},
          {"--outer-lr", 'f', 0, kInf, true},
          {"--outer-momentum", 'f', 0, 1, false, true},
          {"--outer-beta2", 'f', 0, 1, false, true},
          {"--outer-eps", 'f', 0, kInf, true},
          {"--outer-prune", 'd', 0, 1, false, true},
          {"--fragments", 'i', 1, 1024},
          {"--overlap", 'i', 0, 1e9},
          {"--merge-alpha", 'f', 0, 1},
          island_timeout,
          {"--stop-at", 'i', 0, 1e9},
          {"--eval-every", 'i', 0, 1e9},
          {"--val-batches", 'i', 1, 1 << 20},
          {"--print-every", 'i', 1, 1e9},
          {"--save-every", 'i', 0, 1e9},
          {"--keep", 'i', 0, 1 << 20},
          {"--peak-tflops", 'd', 0, kInf}}},
        {"eval --checkpoint missing",
         "missing: checkpoint directory not found",
         {{"--val-fraction", 'd', 0, 1, true, true},
          {"--batch", 'i', 1, 65536},
          {"--seq", 'i', 0, 1 << 20},
          {"--val-batches", 'i', 0, kInf},
          island_timeout}},
        {"generate --checkpoint missing",
         "missing: checkpoint directory not found",
         {{"--tokens", 'i', 0, 1 << 30},
          {"--temperature", 'f', 0, kInf},
          {"--top-k", 'i', 0, kInf},
          {"--seed", 'u', 0, kInf},
          island_timeout}},
        {"prepare --tokenizer missing --out out missing.txt",
         "missing.txt: not found",
         {{"--islands", 'i', 1, 4096},
          {"--val-docs", 'i', 0, kInf},
          {"--val-fraction", 'd', 0, 1, true, true},
          {"--shard-tokens", 'u', 1, 2147483647},
          {"--seed", 'u', 0, kInf}}},
        {"supervise",
         "the command has no --save DIR",
         {{"--restarts", 'i', 0, 1 << 20},
          {"--min-hosts", 'i', 1, 1},  // at most the hosts given: none here
          {"--host-wait", 'd', 0, week},
          {"--probe-timeout", 'd', 0.1, 3600},
          {"--slots", 'i', 1, 4096},
          {"--poll", 'd', 0, 3600, true},
          {"--stall", 'd', 0, week},
          {"--grace", 'i', 1, 3600}},
         "-- true"},
        {"plan",
         "give the model size",
         {{"--vocab", 'i', 0, 1 << 24},
          {"--params", 'd', 1, 1e15},
          {"--step-ms", 'd', 0, kInf, true},
          {"--islands", 'i', 2, 4096},
          {"--inner-steps", 'i', 1, 1e9},
          {"--fragments", 'i', 1, 1024},
          {"--overlap", 'i', 0, 1e9},
          {"--wan-gbps", 'd', 0, kInf},
          {"--wan-latency-ms", 'd', 0, kInf}}},
        {"tokenizer train --out out missing.txt",
         "missing.txt: not found",
         {{"--vocab", 'i', 257, 1 << 24}}},
    };
}

// The options that --help shows with a numeric type.
std::set<std::string> numeric_options(const std::string& subcommand) {
    const CliResult help = diloco::test::run_diloco(subcommand + " --help");
    const std::regex numeric("\\n +(--[a-z0-9-]+) (INT|UINT|FLOAT)\\b");
    std::set<std::string> flags;
    for (std::sregex_iterator m(help.out.begin(), help.out.end(), numeric), end; m != end; ++m)
        flags.insert((*m)[1]);
    return flags;
}

std::string in_quotes(const std::string& word) { return "'" + word + "'"; }

struct Case {
    std::string flag, value;
    bool legal;
    CliResult result;
    std::vector<std::string> left;  // what the run left in its directory
};

// Runs one command line in an empty directory of its own.
void run_case(const Command& command, Case& c) {
    TempDir dir;
    c.result = run_command("cd " + dir.path() + " && " + DILOCO_BINARY + " " + command.args +
                           " " + c.flag + " " + in_quotes(c.value) + " " + command.tail);
    for (const auto& entry : std::filesystem::directory_iterator(dir.path()))
        c.left.push_back(entry.path().filename().string());
}

// Runs the cases eight at a time: each is a process start, most of it waiting.
void run_all(const Command& command, std::vector<Case>& cases) {
    for (size_t first = 0; first < cases.size(); first += 8) {
        std::vector<std::future<void>> running;
        for (size_t i = first; i < std::min(cases.size(), first + 8); i++)
            running.push_back(std::async(std::launch::async, [&, i] { run_case(command, cases[i]); }));
        for (auto& r : running) r.get();
    }
}

void check_table(const std::string& subcommand) {
    for (const Command& command : commands()) {
        if (command.args.rfind(subcommand + " ", 0) != 0 && command.args != subcommand) continue;
        std::set<std::string> tabled;
        for (const OptionRange& o : command.options) tabled.insert(o.flag);
        // A new numeric option must join the table.
        CHECK(numeric_options(subcommand) == tabled);
        std::vector<Case> cases;
        for (const OptionRange& o : command.options)
            for (const std::string probe : kProbes)
                cases.push_back({o.flag, value_of(o, probe), legal(o, probe), {}, {}});
        run_all(command, cases);
        for (const Case& c : cases) {
            const CliResult& r = c.result;
            INFO(command.args << " " << c.flag << " " << in_quotes(c.value) << " " << command.tail
                              << " ("
                              << (c.legal ? "legal" : "out of range") << "): exit "
                              << r.exit_code << ", stderr: " << r.err);
            CHECK(r.exit_code != 0);  // the inputs are missing
            CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
            CHECK(c.left.empty());
            if (c.legal) {
                CHECK_THAT(r.err, Contains(command.accepted));
            } else {
                CHECK_THAT(r.err, Contains(c.flag + ": " + in_quotes(c.value) + " is not a"));
                CHECK_THAT(r.err, Contains("within") || Contains("finite number"));
            }
        }
    }
}

}  // namespace

TEST_CASE("option table: train's numeric options take their range only", "[options]") {
    check_table("train");
}

TEST_CASE("option table: eval generate and prepare take their ranges only", "[options]") {
    check_table("eval");
    check_table("generate");
    check_table("prepare");
}

TEST_CASE("option table: supervise plan and tokenizer take their ranges only", "[options]") {
    check_table("supervise");
    check_table("plan");
    check_table("tokenizer train");
}

namespace {

// One line on stderr holding `needle`, a failing exit, and nothing left in dir.
void check_refused(const TempDir& dir, const CliResult& r, const std::string& needle) {
    INFO("exit " << r.exit_code << ", stderr: " << r.err);
    CHECK(r.exit_code != 0);
    CHECK_THAT(r.err, Contains(needle));
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK(std::filesystem::is_empty(dir.path()));
}

CliResult run_in(const TempDir& dir, const std::string& args) {
    return run_command("cd " + dir.path() + " && " + DILOCO_BINARY + " " + args);
}

}  // namespace

TEST_CASE("lists refuse an empty item and options an empty value", "[options]") {
    TempDir dir;
    const std::string train = "train --data missing.txt --steps 4 ";
    const std::vector<std::pair<std::string, std::string>> cases = {
        {train + "--island-batch 1,", "--island-batch: '1,' has an empty item"},
        {train + "--island-batch 2,,2", "--island-batch: '2,,2' has an empty item"},
        {train + "--island-devices cpu,", "--island-devices: 'cpu,' has an empty item"},
        {train + "--island-sizes 1,", "--island-sizes '1,': '' is not a positive integer"},
        {train + "--island-ids 0,", "--island-ids '0,': '' is not an id"},
        {"supervise --hosts a, --probe true -- true --save ck", "--hosts: 'a,' has an empty item"},
        {train + "--save ''", "--save: an empty value"},
        {train + "--log ''", "--log: an empty value"},
        {train + "--resume ''", "--resume: an empty value"},
        {train + "--init ''", "--init: an empty value"},
        {"train --data ''", "--data: an empty value"},
        {train + "--islands ''", "--islands: an empty value"},
        {"eval --checkpoint missing --dump ''", "--dump: an empty value"},
        {"generate --checkpoint missing --prompt ''", "--prompt: an empty value"},
        {"prepare --tokenizer missing --out '' missing.txt", "--out: an empty value"},
    };
    for (const auto& [args, needle] : cases) check_refused(dir, run_in(dir, args), needle);
    // The island schedule is read once the model is known: it needs data that exists.
    TempDir data;
    diloco::test::write_text(data.file("d.txt"), diloco::test::synthetic_text(20000, 2));
    const std::string schedule = "train --data " + data.file("d.txt") +
                                 " --mode diloco --steps 2 --inner-steps 2 --island-schedule ";
    check_refused(dir, run_in(dir, schedule + "1-2:0,"),
                  "--island-schedule: '' is not FROM-TO:ISLAND+ISLAND");
    check_refused(dir, run_in(dir, schedule + "1-2:0+"), "--island-schedule: '' is not a count");
}

TEST_CASE("a TOML config is held to the options' ranges", "[options]") {
    TempDir dir, config;
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"warmup = \"\"", "--warmup: '' is not a whole number within 0..1000000000"},
        {"outer-eps = inf", "--outer-eps: 'inf' is not a finite number > 0"},
        {"outer-lr = nan", "--outer-lr: 'nan' is not a finite number > 0"},
        {"eval-every = -1", "--eval-every: '-1' is not a whole number within 0..1000000000"},
        {"seed = -1", "--seed: '-1' is not a whole number within 0..18446744073709551615"},
        {"steps = 2.5", "--steps: '2.5' is not a whole number within 1..1000000000"},
        {"island-batch = [2, 0]", "--island-batch: '0' is not a whole number within 1..65536"},
        {"save = \"\"", "--save: an empty value"},
    };
    const std::string file = config.file("run.toml");
    for (const auto& [line, needle] : cases) {
        diloco::test::write_text(file, line + "\n");
        INFO(line);
        check_refused(dir, run_in(dir, "train --data missing.txt --config " + file),
                      file + ": " + needle);
    }
    diloco::test::write_text(file, "island-batch = [2]\nwarmup = 0\n");
    check_refused(dir, run_in(dir, "train --data missing.txt --config " + file),
                  "missing.txt: cannot open");
}

TEST_CASE("prepare refuses a validation set of nothing before it writes", "[options]") {
    TempDir dir;
    diloco::test::write_text(dir.file("t.txt"), diloco::test::synthetic_text(2000, 3));
    // Refused as it is read: the tokenizer is not even looked for.
    const CliResult r = run_in(dir, "prepare --tokenizer missing --val-fraction 0 --out out t.txt");
    INFO(r.err);
    CHECK(r.exit_code != 0);
    CHECK_THAT(r.err, Contains("--val-fraction: '0' is not a finite number within (0, 1)"));
    CHECK_FALSE(std::filesystem::exists(dir.file("out")));
}

TEST_CASE("a simulated link on which a sync outlasts --sync-timeout is refused at start",
          "[options][wan]") {
    TempDir dir;
    diloco::test::write_text(dir.file("d.txt"), diloco::test::synthetic_text(30000, 4));
    const std::string run = "train --data " + dir.file("d.txt") +
                            " --islands 2 --steps 4 --inner-steps 2 --batch 2 --seq 16 "
                            "--eval-every 0 --save " + dir.file("ck") + " ";
    const auto start = std::chrono::steady_clock::now();
    const CliResult slow = diloco::test::run_mpi(2, run + "--wan-gbps 1e-9");
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    INFO(slow.err);
    CHECK(slow.exit_code != 0);
    // tiny: 842,496 parameters in fp32 over 2 islands, 8 x 3.37 MB / 1 bit/s
    CHECK_THAT(slow.err, Contains("--wan-gbps 1e-09, --wan-latency-ms 0: one diloco sync of "
                                  "842,496 parameters would take 2.7e+07 s on the simulated "
                                  "link, more than --sync-timeout 600 s"));
    CHECK(seconds < 30);
    CHECK_FALSE(std::filesystem::exists(dir.file("ck")));
    CHECK_FALSE(std::filesystem::exists(dir.file("ck.steps")));
    // The latency alone counts too: 3 collectives of 300 s.
    CHECK_THAT(diloco::test::run_mpi(2, run + "--wan-latency-ms 300000").err,
               Contains("would take 900 s"));
    // A raised bound lets a slow link run.
    const CliResult raised =
        diloco::test::run_mpi(2, run + "--wan-latency-ms 100 --sync-timeout 0.2");
    CHECK_THAT(raised.err, Contains("would take 0.3 s"));
    const CliResult ran = diloco::test::run_mpi(2, run + "--wan-latency-ms 100 --sync-timeout 1");
    INFO(ran.err);
    CHECK(ran.exit_code == 0);
}

TEST_CASE("supervise: --min-hosts past --hosts is refused and a wait for hosts is said and "
          "bounded",
          "[options]") {
    TempDir dir;
    check_refused(dir, run_in(dir, "supervise --min-hosts 5 --hosts a --probe true -- true "
                                   "--save ck"),
                  "supervise: --min-hosts 5 exceeds the 1 host(s) of --hosts: it could never "
                  "start");
    check_refused(dir, run_in(dir, "supervise --min-hosts 2 -- true --save ck"),
                  "--min-hosts 2 exceeds the 0 host(s) of --hosts");
    const auto start = std::chrono::steady_clock::now();
    const CliResult r = run_in(dir, "supervise --hosts a,b --probe false --host-wait 1 --poll 0.2 "
                                    "-- true --save ck");
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    INFO(r.err);
    CHECK(r.exit_code != 0);
    CHECK_THAT(r.err, Contains("waiting for hosts (0 s so far): 0 of 2 hosts () answer, "
                               "--min-hosts 1 needed"));
    CHECK_THAT(r.err, Contains("supervise: gave up after waiting 1."));
    CHECK_THAT(r.err, Contains("s (--host-wait) for hosts: 0 of 2 hosts () answer"));
    CHECK(r.err.find("launch") == std::string::npos);
    CHECK(seconds > 0.9);
    CHECK(seconds < 10);
    // A probe that hangs is ended after --probe-timeout, and its host counts as down.
    const auto hung = std::chrono::steady_clock::now();
    const CliResult h = run_in(dir, "supervise --hosts a --probe 'sleep 100' --probe-timeout 0.5 "
                                    "--host-wait 1 --poll 0.2 -- true --save ck");
    INFO(h.err);
    CHECK(h.exit_code != 0);
    CHECK_THAT(h.err, Contains("gave up after waiting 1."));
    CHECK(std::chrono::duration<double>(std::chrono::steady_clock::now() - hung).count() < 10);
}

TEST_CASE("numbers are read whole: no space, sign, base, exponent or empty item", "[options]") {
    int i = -7;
    for (const char* bad : {"", " 5", "5 ", "+5", "0x10", "1e3", "5x", "2147483648", "-"})
        CHECK_FALSE(diloco::parse_int(bad, i));
    CHECK(i == -7);  // untouched by a refusal
    CHECK((diloco::parse_int("010", i) && i == 10));  // decimal, not octal
    CHECK((diloco::parse_int("-2147483648", i) && i == -2147483648));
    uint64_t u = 0;
    CHECK_FALSE(diloco::parse_u64("-1", u));
    CHECK_FALSE(diloco::parse_u64("18446744073709551616", u));
    CHECK((diloco::parse_u64("18446744073709551615", u) && u == UINT64_MAX));
    float f = 0;
    CHECK_FALSE(diloco::parse_number("1e39", f));  // past a float, though a finite double
    CHECK_FALSE(diloco::parse_number("nan", f));
    CHECK((diloco::parse_number("-3e38", f) && f == -3e38f));
    double d = 0;
    CHECK_FALSE(diloco::parse_number("inf", d));
    CHECK(d == 0);
    CHECK_FALSE(diloco::parse_number("1e309", d));
    CHECK((diloco::parse_number("1e308", d) && d == 1e308));
    using List = std::vector<std::string>;
    CHECK(diloco::split_list("", ',') == List{});
    CHECK(diloco::split_list("1", ',') == List{"1"});
    CHECK(diloco::split_list("1,", ',') == List{"1", ""});
    CHECK(diloco::split_list(",2,,3", ',') == List{"", "2", "", "3"});
}

TEST_CASE("under mpirun a refused option is said once, by rank 0, before MPI starts",
          "[options]") {
    const CliResult r = diloco::test::run_mpi(2, "train --warmup ''");
    INFO(r.err);
    CHECK(r.exit_code != 0);
    const std::string line = "diloco: error: --warmup: '' is not a whole number";
    CHECK(r.err.find(line) != std::string::npos);
    CHECK(r.err.find(line) == r.err.rfind(line));
}
