// One island's inner training loop, evaluation, and its checkpoint (weights + training state).
// Everything a resumed run needs is integers and fp32 vectors, so resuming is bitwise exact.
#include "optim/inner.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <filesystem>

#include "model/checkpoint.h"
#include "util/error.h"
#include "util/parse.h"
#include "util/safetensors.h"

namespace diloco {

namespace {
const char* kStateVersion = "1";

uint64_t meta_u64(const SafetensorsFile& f, const std::string& key) {
    uint64_t v = 0;
    require(parse_u64(f.meta(key), v),
            f.path() + ": metadata '" + key + "' is not an unsigned integer: '" + f.meta(key) + "'");
    return v;
}

// A count kept in an int (steps): larger values are a corrupt file, not a wrapped number.
int meta_int(const SafetensorsFile& f, const std::string& key) {
    const uint64_t v = meta_u64(f, key);
    require(v <= uint64_t(INT_MAX), f.path() + ": metadata '" + key + "' = " + f.meta(key) +
                                        " is out of range (at most " + std::to_string(INT_MAX) +
                                        ")");
    return static_cast<int>(v);
}
}  // namespace

InnerTrainer::InnerTrainer(Backend& backend, const GptConfig& model, const TrainData& data,
                           const InnerConfig& config)
    : backend_(backend), data_(data), config_(config) {
    require(model.vocab == data.vocab(),
            data.source() + ": vocabulary " + std::to_string(data.vocab()) +
                " does not match the model's " + std::to_string(model.vocab));
    require(config.grad_accum > 0, "micro-batches per step must be positive, got " +
                                       std::to_string(config.grad_accum));
    model_ = std::make_unique<Gpt>(backend, model, config.batch, config.seq);
    adamw_ = std::make_unique<AdamW>(backend, model_->layout(), config.adamw);
}

void InnerTrainer::init_params() {
    model_->set_params(init_gpt2_params(model_->config(), model_->layout(), config_.seed));
}

StepResult InnerTrainer::step() {
    auto start = std::chrono::steady_clock::now();
    // Micro-batch m takes rows first_row + m B .. of the step's batch: the rows, order and mean
    // (each micro-batch's loss scaled by 1/grad_accum) of one batch of grad_accum x B rows.
    const int micro = config_.grad_accum;
    model_->zero_grads();
    double loss = 0;
    for (int m = 0; m < micro; m++) {
        TokenBatch batch = data_.train_batch(config_.data_seed, data_position_, config_.batch,
                                             config_.seq, config_.first_row + m * config_.batch);
        loss += model_->forward_backward(batch.inputs.data(), batch.targets.data(), batch.B,
                                         batch.T, 1.0f / micro) / micro;
        if (micro > 1) model_->fold_grads();
    }
    model_->store_grads();
    data_position_++;
    if (reduce_grads_) reduce_grads_(model_->grads(), model_->num_params());
    ClipResult clip = clip_by_global_norm(backend_, model_->grads(), model_->num_params(),
                                          config_.grad_clip);
    float lr = config_.schedule.at(step_);
    adamw_->step(model_->params(), model_->master(), model_->grads(), lr, clip.scale);
    step_++;
    backend_.synchronize();
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() -
                                                          start).count();
    return {step_, loss, lr, clip.norm, ms};
}

std::pair<double, size_t> validation_share(Gpt& model, const std::vector<TokenBatch>& batches,
                                           int part, int parts, int max_rows) {
    double sum = 0;
    size_t rows = 0;
    for (size_t i = part; i < batches.size(); i += parts) {
        const TokenBatch& b = batches[i];
        for (int first = 0; first < b.B; first += max_rows) {
            const int n = std::min(max_rows, b.B - first);
            const size_t at = size_t(first) * b.T;
            sum += model.evaluate(b.inputs.data() + at, b.targets.data() + at, n, b.T) * n;
        }
        rows += b.B;
    }
    return {sum, rows};
}

// Every rank cuts the same windows into the same batches (an island's own batch may be
// smaller: it evaluates them a piece at a time), so the world's split of them is one split.
std::pair<double, size_t> InnerTrainer::evaluate_share(int max_batches, int part, int parts) {
    const int rows = config_.val_batch > 0 ? config_.val_batch : config_.batch;
    return validation_share(*model_, data_.val_batches(rows, config_.seq, max_batches), part,
                            parts, config_.batch);
}

void InnerTrainer::save_state(const std::string& file) { state_writer()(file); }

std::function<void(const std::string&)> InnerTrainer::state_writer() {
    std::map<std::string, std::string> meta = {
        {"diloco_step", std::to_string(step_)},
        {"state_version", kStateVersion},
        {"seed", std::to_string(config_.seed)},
        {"data_position", std::to_string(data_position_)},
        {"adamw_steps", std::to_string(adamw_->steps_taken())}};
    return [m = adamw_->moment1(), v = adamw_->moment2(), meta](const std::string& file) {
        const int64_t n = static_cast<int64_t>(m.size());
        write_safetensors(file, {{"adamw.m", {n}, m.data()}, {"adamw.v", {n}, v.data()}}, meta);
    };
}

void InnerTrainer::load_state(const std::string& file) {
    SafetensorsFile state = SafetensorsFile::read(file);
    require(state.meta("state_version") == kStateVersion,
            state.path() + ": unsupported state version " + state.meta("state_version"));
    require(meta_u64(state, "seed") == config_.seed,
            state.path() + ": saved with seed " + state.meta("seed") + ", this run has seed " +
                std::to_string(config_.seed));
    const int64_t n = static_cast<int64_t>(model_->num_params());
    std::vector<float> m(n), v(n);
    state.require_only({"adamw.m", "adamw.v"});
    state.read_f32("adamw.m", {n}, m.data());
    state.read_f32("adamw.v", {n}, v.data());
    adamw_->set_state(m, v, meta_int(state, "adamw_steps"));
    step_ = meta_int(state, "diloco_step");
    data_position_ = meta_u64(state, "data_position");
}

int InnerTrainer::load_weights(const std::string& dir,
                               std::map<std::string, std::string>* metadata) {
    Gpt& model = *model_;
    ModelCheckpoint ck = load_model(dir);
    const GptConfig& have = model.config();
    const GptConfig& got = ck.config;
    require(got.vocab == have.vocab && got.padded_vocab == have.padded_vocab &&
                got.max_seq == have.max_seq && got.layers == have.layers &&
                got.heads == have.heads && got.channels == have.channels,
            dir + ": checkpoint is of another model (layers " + std::to_string(got.layers) +
                ", channels " + std::to_string(got.channels) + ", vocab " +
                std::to_string(got.vocab) + ") than configured");
    model.set_params(ck.params);
    auto step = ck.metadata.find("diloco_step");
    int saved_step = 0;
    require(step == ck.metadata.end() || (parse_int(step->second, saved_step) && saved_step >= 0),
            dir + ": metadata 'diloco_step' is not a step number");
    if (metadata) *metadata = std::move(ck.metadata);
    return saved_step;
}

}  // namespace diloco
