// Outer optimizers of DiLoCo over plain fp32 vectors: Nesterov momentum (the paper's), SGD with
// heavy-ball momentum, and Adam, each stepping a range of the global parameters.
#pragma once

#include <cstddef>
#include <vector>

namespace diloco {

enum class OuterOpt { nesterov, sgd, adam };
inline constexpr OuterOpt kOuterOpts[] = {OuterOpt::nesterov, OuterOpt::sgd, OuterOpt::adam};
const char* outer_opt_name(OuterOpt opt);

struct OuterOptConfig {
    OuterOpt kind = OuterOpt::nesterov;
    float lr = 0.7f;
    float momentum = 0.9f;          // Nesterov and SGD; Adam's beta1
    float beta2 = 0.999f;           // Adam
    float eps = 1e-8f;              // Adam
};

// Which part of the parameters an outer step moves, and how many outer steps that part has
// taken counting this one (Adam's bias correction; fragments of Streaming DiLoCo differ).
struct OuterRange {
    size_t begin = 0, end = 0;
    int step = 1;
};

class OuterOptimizer {
public:
    OuterOptimizer(const OuterOptConfig& config, size_t n);

    // One outer step from the islands' weighted mean parameters: the outer gradient is
    // delta = global - mean, and global becomes mean + (delta - update), which is global - update
    // in exact arithmetic and exactly the mean when the update equals delta (lr 1, momentum 0).
    // global and mean point at the range's first element (the outer state is indexed by the
    // range, which is all that changes).
    void step_to_mean(float* global, const float* mean, OuterRange range);
    // One outer step from the islands' mean outer gradient (delta = global - local, as lossy
    // codecs send it, pointing at the range's first element): global becomes global - update.
    void step_by_delta(float* global, const float* delta, OuterRange range);
    // step_to_mean by the owner of a share of the values, which then sends the new global
    // parameters: they are left in `mean` too.
    void step_share(float* global, float* mean, OuterRange range);

    const std::vector<float>& moment1() const { return m_; }
    const std::vector<float>& moment2() const { return v_; }
    void set_state(const std::vector<float>& m, const std::vector<float>& v);
    // The state's vectors (m, and v for Adam), for ranks that each stepped a share of the
    // values to exchange the rest.
    std::vector<std::vector<float>*> state();

private:
    // A step's view of the outer state over its range (Adam's v, or one unused float that
    // every value points at, v_stride 0) and Adam's bias corrections 1 - beta^step.
    struct Step {
        float* m;
        float* v;
        size_t v_stride, n;
        double bias1, bias2;
    };
    Step begin_step(OuterRange range);
    template <typename NewValue>
    void step_each(OuterRange range, float* global, NewValue new_value);
    OuterOptConfig config_;
    std::vector<float> m_, v_;
    float unused_v_ = 0;
};

// Checks the ranges; an Error says which option is wrong.
void validate(const OuterOptConfig& config);

}  // namespace diloco
