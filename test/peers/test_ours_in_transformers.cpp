// Checkpoints of ours in transformers: GPT2LMHeadModel.from_pretrained gives the logits that
// `diloco eval --dump` wrote, and AutoTokenizer encodes like our tokenizer, for a byte-level
// model and a GPT-2-vocabulary one.
#include <catch2/catch.hpp>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "data/tokenizer.h"
#include "test/peers/peers.h"

using namespace diloco;
using namespace diloco::test;

namespace {

// Text that no training data here holds: accents, CJK, an emoji, digits, runs of spaces.
const char* kTestText = "Hello world! It's 2026: a naïve café in 東京 🙂,  twice   spaced\n\tand 1234.";

void require_ok(const CliResult& r, const std::string& what) {
    INFO(what << "\n" << r.out << r.err);
    REQUIRE(r.exit_code == 0);
}

// Trains the tiny preset for a few steps on DATA, saves it, dumps one batch of validation
// windows, and returns what transformers made of the checkpoint directory.
nlohmann::json train_and_compare(const TempDir& dir, const std::string& data) {
    const std::string ck = dir.file("ck");
    require_ok(run_diloco("train --preset tiny --data " + data +
                          " --steps 6 --batch 4 --seq 64 --lr 3e-3 --warmup 1 --save " + ck),
               "train");
    require_ok(run_diloco("eval --checkpoint " + ck + " --data " + data +
                          " --seq 64 --batch 4 --val-batches 1 --dump " + dir.file("dump.st")),
               "eval --dump");
    write_text(dir.file("text.txt"), kTestText);
    const CliResult peer = run_peer_script(
        "ours_in_transformers.py", ck + " " + dir.file("dump.st") + " " + dir.file("text.txt"));
    require_ok(peer, "transformers");
    nlohmann::json report = nlohmann::json::parse(peer.out);
    const double rel = report["max_abs_logits_difference"].get<double>() /
                       report["max_abs_logit"].get<double>();
    std::printf("%s: max |ours - transformers| = %.3g, relative to the largest logit %.3g = %.3g; "
                "mean loss ours %.9f, transformers %.9f\n",
                data.c_str(), report["max_abs_logits_difference"].get<double>(),
                report["max_abs_logit"].get<double>(), rel, report["our_loss"].get<double>(),
                report["their_loss"].get<double>());
    CHECK(report["missing_keys"].empty());
    CHECK(report["unexpected_keys"].empty());
    CHECK(report["mismatched_keys"].empty());
    CHECK(report["logits_shape"] == nlohmann::json({4, 64, report["vocab_size"]}));
    CHECK(rel <= 1e-4);
    CHECK(report["max_abs_loss_difference"].get<double>() <= 1e-4);
    CHECK(report["dropouts"] == nlohmann::json({0.0, 0.0, 0.0}));
    const int vocab = report["vocab_size"];
    for (const char* key : {"bos_token_id", "eos_token_id"}) {
        INFO(key);
        REQUIRE(report[key].is_number_integer());
        CHECK(report[key].get<int>() >= 0);
        CHECK(report[key].get<int>() < vocab);
    }
    CHECK(report["tokenizer_size"] == vocab);
    return report;
}

}  // namespace

TEST_CASE("a byte-level checkpoint of ours loads in transformers with our logits", "[peers]") {
    peers_python();
    TempDir dir;
    write_text(dir.file("train.txt"), synthetic_text(60000, 5));
    nlohmann::json report = train_and_compare(dir, dir.file("train.txt"));
    const std::string text = kTestText;
    std::vector<int> bytes(text.begin(), text.end());
    for (int& b : bytes) b &= 0xFF;
    CHECK(report["tokenizer_ids"] == nlohmann::json(bytes));
}

TEST_CASE("a GPT-2-vocabulary checkpoint of ours loads in transformers with our logits",
          "[peers]") {
    peers_python();
    const std::string gpt2 = shared_data("gpt2/encoder.json");
    TempDir dir;
    write_text(dir.file("val.txt"), synthetic_text(8000, 6));  // the first document validates
    write_text(dir.file("train.txt"), synthetic_text(60000, 7));
    require_ok(run_diloco("prepare --tokenizer " + gpt2 + " --out " + dir.file("data") + " " +
                          dir.file("val.txt") + " " + dir.file("train.txt")),
               "prepare");
    nlohmann::json report = train_and_compare(dir, dir.file("data"));
    CHECK(report["vocab_size"] == 50257);
    CHECK(report["tokenizer_ids"] ==
          nlohmann::json(Tokenizer::load(dir.file("ck")).encode(kTestText)));
}
