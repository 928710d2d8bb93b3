// Tests of checkpoints: the Hugging Face layout of the weights, bitwise round trips of weights
// and training state, what transformers' save_pretrained writes (prefixed names, fp16 and bf16,
// shards, buffers, a tied lm_head), and clear errors for truncated, corrupted and foreign files.
#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <thread>
#include <nlohmann/json.hpp>

#include "checkpoint/checkpointer.h"
#include "checkpoint/diloco_state.h"
#include "checkpoint/writer.h"
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

// Multiples of 1/64 in [-2, 2]: exact in fp16 and bf16, so a 16-bit export loads back bitwise.
std::vector<float> exact_params(const GptConfig& c) {
    const ParamLayout layout = build_layout(c);
    Rng rng(3, 4);
    std::vector<float> p(layout.total);
    for (float& x : p) x = (static_cast<float>(rng.below(257)) - 128.0f) / 64.0f;
    for (size_t i = layout.wte + size_t(c.vocab) * c.channels;
         i < layout.wte + size_t(c.padded_vocab) * c.channels; i++)
        p[i] = 0.0f;  // padded embedding rows are not saved
    return p;
}

// The 16-bit word of a float that fp16 (or bf16) represents exactly.
uint16_t to_16bit(float f, const std::string& dtype) {
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    if (dtype == "BF16") return static_cast<uint16_t>(bits >> 16);
    const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000);
    if ((bits & 0x7FFFFFFF) == 0) return sign;
    const uint32_t exponent = ((bits >> 23) & 0xFF) - 112;
    return static_cast<uint16_t>(sign | (exponent << 10) | ((bits >> 13) & 0x3FF));
}

struct Tensor16 {
    std::string name;
    std::vector<int64_t> shape;
    std::vector<uint16_t> words;
};

// What save_pretrained writes for these parameters: our checkpoint's tensors renamed
// "transformer.NAME" in 16-bit floats, the causal-mask buffers, lm_head.weight = wte, split
// into shards of `per_shard` tensors with an index; config.json as ours.
void write_transformers_export(const std::string& dir, const GptConfig& c,
                               const std::vector<float>& params, const std::string& dtype,
                               size_t per_shard) {
    save_model(dir + "/ours", c, params, {});
    const SafetensorsFile ours = SafetensorsFile::read(dir + "/ours/model.safetensors");
    std::vector<Tensor16> tensors;
    for (const auto& [name, entry] : ours.entries()) {
        size_t n = 1;
        for (int64_t d : entry.shape) n *= d;
        std::vector<float> values(n);
        ours.read_f32(name, entry.shape, values.data());
        Tensor16 t{"transformer." + name, entry.shape, {}};
        for (float v : values) t.words.push_back(to_16bit(v, dtype));
        if (name == "wte.weight") tensors.push_back({"lm_head.weight", t.shape, t.words});
        tensors.push_back(std::move(t));
    }
    for (int l = 0; l < c.layers; l++) {
        std::vector<uint16_t> mask(size_t(c.max_seq) * c.max_seq, to_16bit(1.0f, dtype));
        tensors.push_back({"transformer.h." + std::to_string(l) + ".attn.bias",
                           {1, 1, c.max_seq, c.max_seq}, mask});
    }
    nlohmann::json weight_map;
    for (size_t first = 0; first < tensors.size(); first += per_shard) {
        const std::string shard = "model-" + std::to_string(first / per_shard + 1) + ".safetensors";
        std::vector<TensorToWrite> writes;
        for (size_t i = first; i < std::min(tensors.size(), first + per_shard); i++) {
            writes.push_back({tensors[i].name, tensors[i].shape, tensors[i].words.data(), dtype});
            weight_map[tensors[i].name] = shard;
        }
        write_safetensors(dir + "/" + shard, writes, {{"format", "pt"}});
    }
    test::write_text(dir + "/model.safetensors.index.json",
                     nlohmann::json({{"metadata", {{"total_size", 0}}}, {"weight_map", weight_map}})
                         .dump(2));
    std::filesystem::copy_file(dir + "/ours/config.json", dir + "/config.json");
    std::filesystem::remove_all(dir + "/ours");
}

nlohmann::json read_json(const std::string& path) {
    return nlohmann::json::parse(test::read_text(path));
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

TEST_CASE("DiLoCo's outer state: counters as a tensor, clear errors for another run's",
          "[checkpoint]") {
    TempDir dir;
    OuterState s{"diloco", 12, 2, {1.5f, -2.0f, 0.25f}, {0.5f, 0.25f, 1.0f},
                 {{3, 2, 0}, {3, 3, 2}}, {{0, 40}, {1, 41}, {3, 7}}, {}};
    const std::string file = dir.file("outer.safetensors");
    write_outer_state(file, s);
    const SafetensorsFile f = SafetensorsFile::read(file);
    CHECK(f.entries().at("fragments").dtype == "I32");
    CHECK(f.entries().at("fragments").shape == std::vector<int64_t>{2, 3});
    OuterState back = read_outer_state(file, 3, true, 2);
    CHECK((back.mode == s.mode && back.step == 12 && back.islands == 2));
    CHECK((back.m == s.m && back.v == s.v));
    REQUIRE(back.fragments.size() == 2);
    CHECK((back.fragments[1].syncs == 3 && back.fragments[1].outer_steps == 3 &&
           back.fragments[1].inner_steps == 2 && back.fragments[0].outer_steps == 2));
    CHECK(back.data_positions == s.data_positions);
    CHECK(back.island_ids == std::vector<int>{0, 1});  // not given: the islands' indices
    s.island_ids = {0, 3};
    write_outer_state(file, s);
    CHECK(read_outer_state(file, 3, true, 2).island_ids == s.island_ids);
    s.island_ids = {3, 3};
    write_outer_state(file, s);
    CHECK_THROWS_WITH(read_outer_state(file, 3, true, 2),
                      Catch::Contains(file) && Catch::Contains("id 3 is given twice"));
    s.island_ids = {0, 1, 2};
    write_outer_state(file, s);
    CHECK_THROWS_WITH(read_outer_state(file, 3, true, 2),
                      Catch::Contains(file) && Catch::Contains("island_ids '0,1,2': 3 ids for 2"));
    s.island_ids = {};
    write_outer_state(file, s);

    CHECK_THROWS_WITH(read_outer_state(file, 3, true, 4),
                      Catch::Contains(file) &&
                          Catch::Contains("saved with 2 fragments, this run has 4"));
    CHECK_THROWS_WITH(read_outer_state(file, 5, true, 2), Catch::Contains(file));
    // What an older diloco wrote: counters as comma-joined text, no version.
    write_safetensors(file, {{"outer.m", {3}, s.m.data()}},
                      {{"diloco_step", "12"}, {"mode", "diloco"}, {"islands", "2"},
                       {"fragment_syncs", "3,3"}});
    CHECK_THROWS_WITH(read_outer_state(file, 3, false, 2),
                      Catch::Contains(file) && Catch::Contains("another diloco version"));
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
    CHECK_THROWS_WITH(load_model(dir.file("small")), Catch::Contains("tensor 'h.2.") && Catch::Contains("is unexpected for this config"));

    CHECK_THROWS_WITH(load_model(dir.file("nowhere")), Catch::Contains("not found"));

    // transformers' default end-of-text id of 50256 is no token of a byte-level model.
    save_model(dir.path(), c, p, {});
    auto config = nlohmann::json::parse(test::read_text(dir.file("config.json")));
    config["eos_token_id"] = 50256;
    test::write_text(dir.file("config.json"), config.dump());
    CHECK_THROWS_WITH(load_model(dir.path()),
                      Catch::Contains(dir.file("config.json")) &&
                          Catch::Contains("field \"eos_token_id\" must be a whole number in "
                                          "0..255, found 50256"));
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

TEST_CASE("16-bit floats widen to F32 exactly", "[checkpoint]") {
    TempDir dir;
    const std::vector<uint16_t> half = {0x0001, 0x03FF, 0x3C00, 0x7BFF, 0xC400, 0x8000, 0xC000};
    const std::vector<uint16_t> bf16 = {0x3F80, 0xC2F7, 0x0001};
    const std::vector<uint16_t> infinite = {0x3C00, 0xFC00}, nan = {0x7FC1};
    write_safetensors(dir.file("t.safetensors"),
                      {{"half", {7}, half.data(), "F16"},
                       {"bf16", {3}, bf16.data(), "BF16"},
                       {"infinite", {2}, infinite.data(), "F16"},
                       {"nan", {1}, nan.data(), "BF16"}},
                      {});
    const SafetensorsFile f = SafetensorsFile::read(dir.file("t.safetensors"));
    std::vector<float> h(7), b(3);
    f.read_as_f32("half", {7}, h.data());
    f.read_as_f32("bf16", {3}, b.data());
    CHECK(h[0] == std::ldexp(1.0f, -24));  // the smallest subnormal
    CHECK(h[1] == std::ldexp(1023.0f, -24));
    CHECK(h == std::vector<float>{h[0], h[1], 1.0f, 65504.0f, -4.0f, -0.0f, -2.0f});
    CHECK(std::signbit(h[5]));
    CHECK(b[0] == 1.0f);
    CHECK(b[1] == -123.5f);
    CHECK(b[2] == std::ldexp(1.0f, -133));
    CHECK_THROWS_WITH(f.read_f32("half", {7}, h.data()),
                      Catch::Contains("t.safetensors: tensor 'half' is F16, expected F32"));
    // Widened infinities and NaNs are refused like stored F32 ones.
    CHECK_THROWS_WITH(f.read_as_f32("infinite", {2}, h.data()),
                      Catch::Contains("t.safetensors: tensor 'infinite' holds -inf at index 1"));
    CHECK_THROWS_WITH(f.read_as_f32("nan", {1}, h.data()),
                      Catch::Contains("tensor 'nan' holds") && Catch::Contains("(NaN or Inf)"));
}

TEST_CASE("a sharded fp16 or bf16 transformers export loads with our parameters", "[checkpoint]") {
    const GptConfig c = micro_config();
    const std::vector<float> p = exact_params(c);
    for (const char* dtype : {"F16", "BF16"}) {
        INFO(dtype);
        TempDir dir;
        write_transformers_export(dir.path(), c, p, dtype, 5);
        REQUIRE(std::filesystem::exists(dir.file("model-4.safetensors")));
        ModelCheckpoint ck = load_model(dir.path());
        CHECK(ck.params == p);
        CHECK(ck.config.vocab == 256);
    }
}

TEST_CASE("a wrong transformers export is a one-line error naming the file", "[checkpoint]") {
    const GptConfig c = micro_config();
    const std::vector<float> p = exact_params(c);
    TempDir dir;
    const std::string index = dir.file("model.safetensors.index.json");
    auto fresh = [&] {
        std::filesystem::remove_all(dir.path());
        std::filesystem::create_directories(dir.path());
        write_transformers_export(dir.path(), c, p, "F16", 5);
    };
    auto fails_with = [&](const std::string& file, const std::string& what) {
        CHECK_THROWS_WITH(load_model(dir.path()), Catch::Contains(file) && Catch::Contains(what));
    };

    fresh();
    test::write_text(index, "{\"weight_map\": {");
    fails_with(index, "malformed JSON");
    test::write_text(index, "{\"metadata\": {}}");
    fails_with(index, "no \"weight_map\" object");

    fresh();
    std::filesystem::remove(dir.file("model-2.safetensors"));
    fails_with(dir.file("model-2.safetensors"), "cannot open");

    fresh();  // a tensor the index does not list
    nlohmann::json j = read_json(index);
    const std::string unlisted = j["weight_map"].begin().key();
    const std::string home = j["weight_map"][unlisted];
    j["weight_map"].erase(unlisted);
    test::write_text(index, j.dump());
    fails_with(dir.file(home), "tensor '" + unlisted + "' is not in " + index);

    fresh();  // a tensor the index lists that its shard lacks
    j = read_json(index);
    j["weight_map"]["transformer.h.0.ln_1.extra"] = "model-1.safetensors";
    test::write_text(index, j.dump());
    fails_with(dir.file("model-1.safetensors"), "missing tensor 'transformer.h.0.ln_1.extra'");
    j["weight_map"]["transformer.h.0.ln_1.extra"] = "../model-1.safetensors";
    test::write_text(index, j.dump());
    fails_with(index, "is not a file name in this directory");

    fresh();  // a wrong shape: a config of wider positions than the tensors
    nlohmann::json config = read_json(dir.file("config.json"));
    config["n_positions"] = 32;
    test::write_text(dir.file("config.json"), config.dump());
    fails_with("wpe.weight", "has shape [16,16], expected [32,16]");

    fresh();  // an unknown tensor: the checkpoint of a deeper model
    config = read_json(dir.file("config.json"));
    config["n_layer"] = 1;
    test::write_text(dir.file("config.json"), config.dump());
    fails_with("model-", "tensor 'transformer.h.1.");

    fresh();
    config = read_json(dir.file("config.json"));
    config["activation_function"] = "relu";
    test::write_text(dir.file("config.json"), config.dump());
    fails_with(dir.file("config.json"), "activation_function = \"relu\" is not supported");

    fresh();
    save_model(dir.path(), c, p, {});
    fails_with(dir.path(), "holds both model.safetensors and model.safetensors.index.json");
    std::filesystem::remove(index);
    std::filesystem::remove(dir.file("model.safetensors"));
    fails_with(dir.path(), "no model.safetensors or model.safetensors.index.json");

    // An output layer that is not the embedding is another architecture.
    std::vector<float> head(size_t(c.vocab) * c.channels, 0.25f);
    save_model(dir.path(), c, p, {});
    const SafetensorsFile ours = SafetensorsFile::read(dir.file("model.safetensors"));
    std::vector<TensorToWrite> writes;
    std::vector<std::vector<float>> keep;
    for (const auto& [name, entry] : ours.entries()) {
        size_t n = 1;
        for (int64_t d : entry.shape) n *= d;
        keep.emplace_back(n);
        ours.read_f32(name, entry.shape, keep.back().data());
        writes.push_back({name, entry.shape, keep.back().data()});
    }
    writes.push_back({"lm_head.weight", {c.vocab, c.channels}, head.data()});
    write_safetensors(dir.file("model.safetensors"), writes, {});
    fails_with(dir.file("model.safetensors"),
               "tensor 'lm_head.weight' differs from the token embedding");
}

namespace {

// A part of a save (or progress) that is one file holding `text`.
std::function<void(const std::string&)> write_marker(const std::string& text) {
    return [text](const std::string& d) { test::write_text(d + "/marker", text); };
}

}  // namespace

TEST_CASE("island progress beside a save: written whole, newest found, gone with its save",
          "[checkpoint][faults]") {
    TempDir dir;
    const std::string root = dir.file("ck");
    prepare_checkpoint_root(root);
    CheckpointWriter writer(root, 0, 1, 0, 10, 1);
    writer.save(10, write_marker("save 10"));
    writer.wait();
    const std::string base = writer.step_dir(10);
    CHECK(newest_progress(root, 1).empty());
    keep_progress(base, 1, 13, write_marker("island 1 at 13"));
    keep_progress(base, 2, 20, write_marker("island 2 at 20"));
    // Half-written progress (a crash while keeping it) is never taken.
    std::filesystem::create_directories(progress_dir(base, 1, 19) + ".tmp");
    CHECK(newest_progress(root, 1) == progress_dir(base, 1, 13));
    keep_progress(base, 1, 17, write_marker("island 1 at 17"));
    CHECK(newest_progress(root, 1) == progress_dir(base, 1, 17));
    CHECK_FALSE(std::filesystem::exists(progress_dir(base, 1, 13)));  // the older one goes
    CHECK(test::read_text(newest_progress(root, 1) + "/marker") == "island 1 at 17");
    CHECK(progress_steps(root) == std::map<int, int>{{1, 17}, {2, 20}});
    // Keeping the same step again changes nothing (it is the same state).
    keep_progress(base, 2, 20, write_marker("not written"));
    CHECK(test::read_text(progress_dir(base, 2, 20) + "/marker") == "island 2 at 20");
    // Once a newer save is published, progress past the older one is never resumed: removed.
    writer.save(20, write_marker("save 20"));
    writer.wait();
    CHECK(progress_steps(root).empty());
    CHECK(newest_progress(root, 1).empty());
    CHECK_FALSE(std::filesystem::exists(progress_dir(base, 1, 19) + ".tmp"));
    CHECK(std::filesystem::exists(base));  // --keep 0 keeps every save itself
}

TEST_CASE("once training failed, rank 0 publishes a save without the parts of ranks that died",
          "[checkpoint][faults]") {
    TempDir dir;
    const std::string root = dir.file("ck");
    prepare_checkpoint_root(root);
    CheckpointWriter writer(root, 0, 2, 0, 600, 1);
    writer.save(5, write_marker("rank 0"));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    CHECK(published_step(root) == -1);  // rank 1's part is awaited
    writer.give_up_after(0.1);
    writer.wait();
    CHECK(published_step(root) == 5);
}

TEST_CASE("the checks of --save make nothing; the first save makes DIR.steps", "[checkpoint]") {
    namespace fs = std::filesystem;
    TempDir dir;
    check_checkpoint_root(dir.file("a/b/ck"));  // a writable place: no error, nothing made
    CHECK_FALSE(fs::exists(dir.file("a")));
    test::write_text(dir.file("file"), "x");
    CHECK_THROWS_WITH(check_checkpoint_root(dir.file("file/ck")),
                      Catch::Contains("--save " + dir.file("file/ck.steps") +
                                      ": cannot create the directory"));
    CHECK_THROWS_WITH(check_checkpoint_root(dir.file("file")),
                      Catch::Contains("exists and is not a checkpoint link (a file)"));
    CHECK_FALSE(fs::exists(dir.file("file/ck.steps")));
    fs::create_directories(dir.file("empty"));
    check_checkpoint_root(dir.file("empty"));
    CHECK(fs::is_directory(dir.file("empty")));  // removed only at the first save
    CHECK_FALSE(fs::exists(dir.file("empty.steps")));
    prepare_checkpoint_root(dir.file("empty"));
    CHECK_FALSE(fs::exists(dir.file("empty")));
    CHECK(fs::is_directory(dir.file("empty.steps")));
}

TEST_CASE("saves: every --save-every steps and at the last step, none without --save",
          "[checkpoint]") {
    const SavePolicy every_6{"ck", 6, 3, 20};
    CHECK(every_6.due(6));
    CHECK(every_6.due(12));
    CHECK_FALSE(every_6.due(10));
    CHECK(every_6.due(20));
    const SavePolicy at_end{"ck", 0, 3, 20};
    CHECK_FALSE(at_end.due(6));
    CHECK(at_end.due(20));
    CHECK_FALSE(SavePolicy{"", 6, 3, 20}.due(20));
}
