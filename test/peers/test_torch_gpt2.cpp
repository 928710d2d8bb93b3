// bench/torch_gpt2.py, the PyTorch side of bench/gpu_check.sh's training table, at a tiny shape on
// the CPU (eager: torch.compile takes minutes here): each batch size trains and prints its line,
// and its first loss is ours from our initialisation (model/gpt.cpp) on the same kind of tokens.
#include <catch2/catch.hpp>

#include <cmath>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/backend.h"
#include "model/gpt.h"
#include "test/peers/peers.h"
#include "util/rng.h"

using namespace diloco;
using namespace diloco::test;

namespace {

const std::string kTiny =
    "--device cpu --no-compile --seq 16 --layers 2 --heads 2 --channels 32 --vocab 64 --steps 2 "
    "--warmup 1";

// The value of `key=` in the line, or "" when the key is absent.
std::string field(const std::string& line, const std::string& key) {
    const size_t at = line.find(" " + key + "=");
    if (at == std::string::npos) return "";
    const size_t from = at + key.size() + 2;
    return line.substr(from, line.find(' ', from) - from);
}

// The torch_gpt2 line of `out`, or "" when there is none.
std::string result_line(const std::string& out) {
    std::istringstream lines(out);
    for (std::string line; std::getline(lines, line);)
        if (line.rfind("torch_gpt2 ", 0) == 0) return line;
    return "";
}

// Our loss on uniform random tokens from init_gpt2_params, as bench_train's first step sees it.
double our_initial_loss(const GptConfig& c, int B, int T) {
    std::unique_ptr<Backend> cpu = make_cpu_backend();
    Gpt model(*cpu, c, B, T);
    model.set_params(init_gpt2_params(c, model.layout(), 1));
    Rng rng(2, 0);
    std::vector<int32_t> tokens(size_t(B) * T), targets(tokens.size());
    for (size_t i = 0; i < tokens.size(); i++) {
        tokens[i] = static_cast<int32_t>(rng.below(c.vocab));
        targets[i] = static_cast<int32_t>(rng.below(c.vocab));
    }
    return model.evaluate(tokens.data(), targets.data(), B, T);
}

}  // namespace

TEST_CASE("torch_gpt2.py starts from our initial loss", "[peers]") {
    // A vocabulary that is padded (500 -> 512 rows) and enough tokens (512) that two draws of
    // them agree to about 0.01: PyTorch's default initialisation starts above 40 here.
    const GptConfig c = gpt_config(500, 64, 2, 2, 64);
    const int B = 8, T = 64;
    const CliResult r = run_peer("bench/torch_gpt2.py",
                                 "--device cpu --no-compile --batch 8 --seq 64 --layers 2 "
                                 "--heads 2 --channels 64 --vocab 500 --steps 1 --warmup 1");
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    const std::string loss = field(result_line(r.out), "loss");
    REQUIRE(!loss.empty());
    const double theirs = std::stod(loss), ours = our_initial_loss(c, B, T);
    INFO("first loss: torch " << theirs << ", ours " << ours);
    CHECK(std::fabs(theirs - ours) < 0.05);
    // Both are GPT-2's start: ln(vocab) plus half the logits' variance (0.02^2 per channel).
    CHECK(std::fabs(ours - (std::log(c.vocab) + 0.5 * 0.02 * 0.02 * c.channels)) < 0.05);
}

TEST_CASE("torch_gpt2.py trains each batch size and prints its tokens/s", "[peers]") {
    const CliResult r = run_peer("bench/torch_gpt2.py", "--batch 2,3 " + kTiny);
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    std::istringstream lines(r.out);
    int batch = 2;
    for (std::string line; std::getline(lines, line);) {
        if (line.rfind("torch_gpt2 ", 0) != 0) continue;
        INFO(line);
        CHECK(field(line, "B") == std::to_string(batch++));
        CHECK(field(line, "T") == "16");
        CHECK(field(line, "compile") == "off");
        const double ms = std::stod(field(line, "ms_per_step"));
        const double tokens = std::stod(field(line, "tokens_per_s"));
        CHECK(ms > 0);
        // tokens/s is B x T per step time, both as printed: the time to 0.01 ms, which is a
        // share 0.005 / ms of a step of a few ms, the rate to the integer.
        CHECK(std::fabs(tokens - (batch - 1) * 16 / (ms * 1e-3)) <=
              0.5 + (0.005 / ms + 1e-4) * tokens);
        const std::string loss = field(line, "loss");
        const double first = std::stod(loss), last = std::stod(loss.substr(loss.find("->") + 2));
        CHECK(std::isfinite(first));
        CHECK(first > 0);
        CHECK(std::isfinite(last));
    }
    CHECK(batch == 4);
}

TEST_CASE("torch_gpt2.py waits for its go file before the timed steps", "[peers]") {
    TempDir dir;
    const std::string go = dir.file("go"), log = dir.file("log");
    // Once it says it waits, no timed result may be out yet; then the file appears.
    const std::string script = std::string(DILOCO_SOURCE_DIR) + "/bench/torch_gpt2.py";
    const CliResult r = run_command(
        "(" + peers_python() + " " + script + " --batch 2 --go-file " + go + " " + kTiny + " >" +
        log + " 2>&1 & pid=$!; for i in $(seq 3000); do grep -q waiting " + log +
        " && break; kill -0 $pid || break; sleep 0.2; done; echo \"before go: $(grep -c '^torch_gpt2 ' " + log +
        ")\"; touch " + go + "; wait $pid; rc=$?; cat " + log + "; exit $rc)");
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.find("before go: 0\n") != std::string::npos);
    CHECK(r.out.find("waiting for " + go) != std::string::npos);
    CHECK(r.out.find("torch_gpt2 device=cpu compile=off B=2 T=16 ") != std::string::npos);
}

TEST_CASE("torch_gpt2.py refuses a bad batch list", "[peers]") {
    const CliResult r = run_peer("bench/torch_gpt2.py", "--batch 2,x " + kTiny);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("--batch '2,x': expected comma-separated integers") != std::string::npos);
    CHECK(r.out.empty());
}
