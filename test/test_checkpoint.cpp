// Tests of checkpoints: the Hugging Face layout of the weights, bitwise round trips of weights
// and training state, and clear errors for truncated, corrupted and foreign files.
#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "data/byte_corpus.h"
#include "model/checkpoint.h"
#include "optim/inner.h"
#include "test/helpers.h"
#include "util/error.h"
#include "util/rng.h"
#include "util/safetensors.h"

using namespace diloco;
using diloco::test::TempDir;

namespace {

GptConfig micro_config() {
    GptConfig c = preset_config("tiny", 256);
    c.layers = 2, c.channels = 16, c.heads = 2, c.max_seq = 16;
    return c;
}

InnerConfig micro_inner() {
    InnerConfig ic;
    ic.batch = 2, ic.seq = 16, ic.seed = 99;
    ic.schedule = {1e-3f, 2, 20, 0.1f};
    return ic;
}

std::vector<float> random_params(size_t n) {
    Rng rng(1, 2);
    std::vector<float> p(n);
    for (float& x : p) x = static_cast<float>(rng.normal());
    return p;
}

void flip_byte(const std::string& path, size_t from_end) {
    std::string bytes = test::read_text(path);
    bytes[bytes.size() - from_end] ^= 0x5a;
    test::write_text(path, bytes);
}

}  // namespace

TEST_CASE("model weights round-trip bitwise in the Hugging Face layout", "[checkpoint]") {
    TempDir dir;
    GptConfig c = micro_config();
    ParamLayout layout = build_layout(c);
    std::vector<float> p = random_params(layout.total);
    for (size_t i = size_t(c.vocab) * c.channels; i < size_t(c.padded_vocab) * c.channels; i++)
        p[i] = 0.0f;  // padded rows are not saved: they must be zero to round-trip
    save_model(dir.path(), c, p, {{"diloco_step", "7"}});
    ModelCheckpoint ck = load_model(dir.path());
    CHECK(ck.params == p);
    CHECK(ck.metadata.at("diloco_step") == "7");
    CHECK(ck.config.layers == c.layers);
    CHECK(ck.config.padded_vocab == c.padded_vocab);

    SafetensorsFile f = SafetensorsFile::read(dir.file("model.safetensors"));
    CHECK(f.entries().at("h.0.attn.c_attn.weight").shape == std::vector<int64_t>{16, 48});
    CHECK(f.entries().at("h.1.mlp.c_proj.weight").shape == std::vector<int64_t>{64, 16});
    CHECK(f.entries().at("wte.weight").shape == std::vector<int64_t>{256, 16});
    CHECK(f.meta("format") == "pt");
    // Conv1D layout: element [in=i, out=o] of the file is our weight[o, i].
    const ParamTensor& t = layout.find("h.0.attn.c_attn.weight");
    std::vector<float> hf(t.size);
    f.read_f32(t.name, {16, 48}, hf.data());
    CHECK(hf[3 * 48 + 5] == p[t.offset + 5 * 16 + 3]);
}

TEST_CASE("training state resumes bitwise", "[checkpoint]") {
    TempDir dir;
    test::write_text(dir.file("d.txt"), test::synthetic_text(20000, 1));
    ByteCorpus data = ByteCorpus::from_file(dir.file("d.txt"), 0.1, 16);
    auto backend = make_cpu_backend();
    InnerTrainer a(*backend, micro_config(), data, micro_inner());
    a.init_params();
    for (int i = 0; i < 3; i++) a.step();
    save_model(dir.file("ck"), micro_config(), a.model().get_params(), {{"diloco_step", "3"}});
    a.save_state(dir.file("ck/state.safetensors"));
    InnerTrainer b(*backend, micro_config(), data, micro_inner());
    CHECK(b.load_weights(dir.file("ck")) == 3);
    b.load_state(dir.file("ck/state.safetensors"));
    CHECK(b.steps_taken() == 3);
    CHECK(b.data_position() == a.data_position());
    CHECK(b.model().get_params() == a.model().get_params());
    StepResult ra = a.step(), rb = b.step();
    CHECK(ra.loss == rb.loss);
    CHECK(b.model().get_params() == a.model().get_params());
}

TEST_CASE("truncated, corrupted and foreign checkpoints are clear errors", "[checkpoint]") {
    TempDir dir;
    GptConfig c = micro_config();
    std::vector<float> p(build_layout(c).total, 0.25f);
    const std::string file = dir.file("model.safetensors");

    save_model(dir.path(), c, p, {});
    std::filesystem::resize_file(file, std::filesystem::file_size(file) - 10);
    CHECK_THROWS_WITH(load_model(dir.path()),
                      Catch::Contains(file) && Catch::Contains("truncated"));

    save_model(dir.path(), c, p, {});
    flip_byte(file, 100);
    CHECK_THROWS_WITH(load_model(dir.path()),
                      Catch::Contains(file) && Catch::Contains("corrupted"));

    test::write_text(file, "this is not a safetensors file at all");
    CHECK_THROWS_WITH(load_model(dir.path()), Catch::Contains(file));

    test::write_text(file, std::string("\x04\0\0\0\0\0\0\0{]}!", 12));
    CHECK_THROWS_WITH(load_model(dir.path()),
                      Catch::Contains(file) && Catch::Contains("malformed"));

    GptConfig other = c;
    other.layers = 3;
    save_model(dir.path(), other, std::vector<float>(build_layout(other).total, 0.0f), {});
    save_model(dir.file("small"), c, p, {});
    std::filesystem::copy_file(dir.file("model.safetensors"), dir.file("small/model.safetensors"),
                               std::filesystem::copy_options::overwrite_existing);
    CHECK_THROWS_WITH(load_model(dir.file("small")), Catch::Contains("unexpected tensor 'h.2."));

    CHECK_THROWS_WITH(load_model(dir.file("nowhere")), Catch::Contains("not found"));

    // transformers' default end-of-text id of 50256 is no token of a byte-level model.
    save_model(dir.path(), c, p, {});
    auto config = nlohmann::json::parse(test::read_text(dir.file("config.json")));
    config["eos_token_id"] = 50256;
    test::write_text(dir.file("config.json"), config.dump());
    CHECK_THROWS_WITH(load_model(dir.path()),
                      Catch::Contains(dir.file("config.json")) &&
                          Catch::Contains("eot = 50256 is not a token of the vocabulary"));
}

TEST_CASE("loading another model's weights or state is refused", "[checkpoint]") {
    TempDir dir;
    test::write_text(dir.file("d.txt"), test::synthetic_text(20000, 2));
    ByteCorpus data = ByteCorpus::from_file(dir.file("d.txt"), 0.1, 16);
    auto backend = make_cpu_backend();
    InnerTrainer a(*backend, micro_config(), data, micro_inner());
    a.init_params();
    a.step();
    save_model(dir.file("ck"), micro_config(), a.model().get_params(), {});
    a.save_state(dir.file("ck/state.safetensors"));
    GptConfig wider = micro_config();
    wider.channels = 32;
    InnerTrainer b(*backend, wider, data, micro_inner());
    CHECK_THROWS_WITH(b.load_weights(dir.file("ck")), Catch::Contains("another model"));
    CHECK_THROWS_WITH(b.load_state(dir.file("ck/state.safetensors")),
                      Catch::Contains("state.safetensors") && Catch::Contains("shape"));
    InnerConfig other_seed = micro_inner();
    other_seed.seed = 5;
    InnerTrainer c(*backend, micro_config(), data, other_seed);
    CHECK_THROWS_WITH(c.load_state(dir.file("ck/state.safetensors")),
                      Catch::Contains("seed 99"));
}
