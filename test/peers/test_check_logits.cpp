// bench/check_logits.py, the logits check of bench/gpu_check.sh, on the CPU at a tiny shape: our
// fp32 logits of a random-init checkpoint made by transformers equal GPT2LMHeadModel's.
#include <catch2/catch.hpp>

#include <string>

#include "test/peers/peers.h"

using namespace diloco::test;

namespace {

CliResult check_logits(const TempDir& dir, const std::string& args) {
    return run_peer("bench/check_logits.py", "--diloco " + std::string(DILOCO_BINARY) +
                                                 " --dir " + dir.path() +
                                                 " --layers 2 --heads 4 --channels 64 --seq 32 " +
                                                 args);
}

}  // namespace

TEST_CASE("check_logits.py finds our fp32 logits equal to transformers' on the CPU", "[peers]") {
    TempDir dir;
    const CliResult r = check_logits(dir, "--device cpu");
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    const size_t at = r.out.find("check_logits device=cpu precision=fp32 windows=2 T=32 ");
    REQUIRE(at != std::string::npos);
    const std::string line = r.out.substr(at, r.out.find('\n', at) - at);
    const size_t rel = line.find("rel_error=");
    REQUIRE(rel != std::string::npos);
    CHECK(std::stod(line.substr(rel + 10)) <= 1e-4);
    CHECK(line.find("tolerance=0.0001 result=ok") != std::string::npos);
}

TEST_CASE("check_logits.py reports our eval's error and exits non-zero", "[peers]") {
    TempDir dir;
    const CliResult r = check_logits(dir, "--device cpu --precision bf16");
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("--precision bf16 needs --device cuda") != std::string::npos);
    CHECK(r.out.empty());
}
