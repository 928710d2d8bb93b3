// `diloco train`'s hooks: the options bound to the evaluation and save policies, the files a
// checkpoint carries beside the loop's (the tokenizer), and the order of a step's events.
#include "tools/train_hooks.h"

#include <optional>
#include <string>

#include "data/tokenizer.h"

namespace diloco {

namespace {

// A checkpoint carries its tokenizer, for `diloco generate` and transformers' AutoTokenizer (a
// byte-level model: the Hugging Face files of its 256-byte vocabulary; a .bin shard has none).
void save_tokenizer(const TrainData& data, const std::string& dir) {
    if (!data.tokenizer_dir().empty()) Tokenizer::load(data.tokenizer_dir()).save_gpt2(dir);
    else if (data.vocab() == 256) save_byte_vocab_hf(dir);
}

EvalPolicy eval_policy(const TrainOptions& o) {
    return {o.eval_every, o.last_step(), o.mode(), o.diloco.inner_steps};
}

SavePolicy save_policy(const TrainOptions& o) {
    return {o.save, o.save_every, o.keep, o.last_step()};
}

}  // namespace

TrainHooks::TrainHooks(Run& run, const TrainOptions& o)
    : run_(run), val_batches_(o.val_batches), report_(run, o), eval_(eval_policy(o)),
      checkpoints_(save_policy(o), *run.loop, run.comms,
                   [&data = *run.data](const std::string& dir) { save_tokenizer(data, dir); }) {}

// Evaluation and saving stand outside the report's clocks.
void TrainHooks::step_done(int step, bool round_end) {
    report_.step_done(round_end);
    std::optional<double> val_loss;
    if (eval_.due(step, round_end)) {
        val_loss = run_.loop->evaluate(val_batches_);
        report_.evaluation(step, *val_loss);
    }
    report_.flush();
    if (checkpoints_.due(step)) checkpoints_.save(step, val_loss);
    report_.resume();
}

void TrainHooks::keep_progress() { checkpoints_.keep_progress(run_.trainer->steps_taken()); }

}  // namespace diloco
