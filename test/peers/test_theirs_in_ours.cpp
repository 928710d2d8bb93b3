// transformers' checkpoints in ours: a save_pretrained directory (transformer.-prefixed names,
// fp16 or bf16, sharded under model.safetensors.index.json) loads with --init and `diloco eval`,
// and the loss our eval prints is the loss transformers computes on the same windows.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "test/peers/peers.h"
#include "util/safetensors.h"

using namespace diloco;
using namespace diloco::test;

namespace {

void require_ok(const CliResult& r, const std::string& what) {
    INFO(what << "\n" << r.out << r.err);
    REQUIRE(r.exit_code == 0);
}

// Our eval of a directory of theirs on DIR/d.txt, and transformers' loss on the same windows.
void compare_losses(const TempDir& dir, const std::string& theirs) {
    const std::string dump = theirs + ".dump";
    const CliResult ours = run_diloco("eval --checkpoint " + theirs + " --data " +
                                      dir.file("d.txt") +
                                      " --seq 64 --batch 4 --val-batches 2 --json --dump " + dump);
    require_ok(ours, "diloco eval");
    const double our_loss = nlohmann::json::parse(ours.out).at("val_loss").get<double>();
    const CliResult peer = run_peer_script("theirs_for_ours.py", "loss " + theirs + " " + dump);
    require_ok(peer, "transformers' loss");
    const nlohmann::json report = nlohmann::json::parse(peer.out);
    const double their_loss = report["their_loss"].get<double>();
    const double rel = report["max_abs_logits_difference"].get<double>() /
                       report["max_abs_logit"].get<double>();
    std::printf("%s: loss ours %.9f, transformers %.9f; max logits difference %.3g relative\n",
                theirs.c_str(), our_loss, their_loss, rel);
    CHECK(std::abs(our_loss - their_loss) <= 1e-6 * their_loss);
    CHECK(rel <= 1e-4);
    require_ok(run_diloco("train --data " + dir.file("d.txt") + " --init " + theirs +
                          " --steps 1 --batch 4 --seq 64 --eval-every 0"),
               "train --init");
}

}  // namespace

TEST_CASE("save_pretrained's fp16 shards and bf16 file load in ours with transformers' loss",
          "[peers]") {
    peers_python();
    TempDir dir;
    write_text(dir.file("d.txt"), synthetic_text(40000, 11));
    const std::string fp16 = dir.file("fp16"), bf16 = dir.file("bf16");
    require_ok(run_peer_script("theirs_for_ours.py", "make " + fp16 + " float16 400KB 1"),
               "save_pretrained fp16");
    require_ok(run_peer_script("theirs_for_ours.py", "make " + bf16 + " bfloat16 100MB 2"),
               "save_pretrained bf16");

    const std::string index = fp16 + "/model.safetensors.index.json";
    REQUIRE(std::filesystem::exists(index));
    const auto weight_map = nlohmann::json::parse(read_text(index)).at("weight_map");
    size_t prefixed = 0;
    std::set<std::string> shards;
    for (const auto& [name, shard] : weight_map.items()) {
        prefixed += name.starts_with("transformer.");
        shards.insert(shard.get<std::string>());
    }
    CHECK(prefixed + 1 >= weight_map.size());  // all but perhaps lm_head.weight
    CHECK(shards.size() >= 3);
    const SafetensorsFile first = SafetensorsFile::read(fp16 + "/" + *shards.begin());
    CHECK(first.entries().begin()->second.dtype == "F16");
    CHECK(SafetensorsFile::read(bf16 + "/model.safetensors").entries().begin()->second.dtype ==
          "BF16");

    compare_losses(dir, fp16);
    compare_losses(dir, bf16);
}
