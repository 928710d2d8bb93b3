// Causal attention through cuDNN's fused scaled-dot-product kernels (tensor cores, bf16), built
// with NVIDIA's cudnn-frontend graph API: forward with log-sum-exp stats, and backward.
#include <cudnn.h>
#include <cudnn_frontend.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "kernels/cuda/ops.h"
#include "util/error.h"

namespace diloco::cuda {

namespace fe = cudnn_frontend;

// Tensor ids in a graph's variant pack.
enum : int64_t { kQ = 1, kK, kV, kO, kStats, kDO, kDQ, kDK, kDV };

// A graph per (direction, B, T, C, NH), built once; and per shape (B, T, C, NH) the choice made
// once: "" where cuDNN runs it, else cuDNN's reason for refusing it (our kernels take it then).
using GraphKey = std::array<int, 5>;
using ShapeKey = std::array<int, 4>;

struct CudnnAttention {
    cudnnHandle_t handle = nullptr;
    std::map<GraphKey, std::shared_ptr<fe::graph::Graph>> graphs;
    std::map<ShapeKey, std::string> refusals;
    ~CudnnAttention() {  // must not throw: a failure is reported
        graphs.clear();
        const cudnnStatus_t status = handle ? cudnnDestroy(handle) : CUDNN_STATUS_SUCCESS;
        if (status != CUDNN_STATUS_SUCCESS)
            std::fprintf(stderr, "warning: cudnnDestroy: %s\n", cudnnGetErrorString(status));
    }
};

namespace {

void check_cudnn(cudnnStatus_t status, const char* call) {
    if (status != CUDNN_STATUS_SUCCESS)
        throw Error(std::string("cuDNN: ") + call + " failed: " + cudnnGetErrorString(status));
}

// Empty when the frontend call succeeded, else its message.
std::string failure(fe::error_t result) { return result.is_good() ? "" : result.get_message(); }

CudnnAttention& state(Context& ctx) {
    if (!ctx.cudnn) {
        auto s = std::make_shared<CudnnAttention>();
        check_cudnn(cudnnCreate(&s->handle), "cudnnCreate");
        check_cudnn(cudnnSetStream(s->handle, ctx.stream), "cudnnSetStream");
        ctx.cudnn = std::move(s);
    }
    return *ctx.cudnn;
}

// Layouts, as [B, NH, T, hs] views: q, k and v are column slices of qkv [B, T, 3C] (and dq, dk,
// dv of dqkv), out and dout are [B, T, C]; the stats are [B, NH, T, 1] fp32, our lse layout.
struct Shape {
    int64_t B, T, C, NH, hs;
    std::vector<int64_t> dims() const { return {B, NH, T, hs}; }
    std::vector<int64_t> qkv_strides() const { return {T * 3 * C, hs, 3 * C, 1}; }
    std::vector<int64_t> out_strides() const { return {T * C, hs, C, 1}; }
};

std::shared_ptr<fe::graph::Tensor_attributes> input(fe::graph::Graph& g, const char* name,
                                                    int64_t uid, std::vector<int64_t> dims,
                                                    std::vector<int64_t> strides) {
    return g.tensor(fe::graph::Tensor_attributes().set_name(name).set_uid(uid).set_dim(dims).set_stride(
        strides));
}

void mark_output(const std::shared_ptr<fe::graph::Tensor_attributes>& t, int64_t uid,
                 std::vector<int64_t> dims, std::vector<int64_t> strides) {
    t->set_output(true).set_uid(uid).set_dim(dims).set_stride(strides);
}

std::shared_ptr<fe::graph::Graph> new_graph() {
    auto g = std::make_shared<fe::graph::Graph>();
    g->set_io_data_type(fe::DataType_t::BFLOAT16)
        .set_intermediate_data_type(fe::DataType_t::FLOAT)
        .set_compute_data_type(fe::DataType_t::FLOAT);
    return g;
}

std::shared_ptr<fe::graph::Graph> forward_graph(const Shape& s) {
    auto g = new_graph();
    auto q = input(*g, "q", kQ, s.dims(), s.qkv_strides());
    auto k = input(*g, "k", kK, s.dims(), s.qkv_strides());
    auto v = input(*g, "v", kV, s.dims(), s.qkv_strides());
    auto options = fe::graph::SDPA_attributes()
                       .set_name("attention")
                       .set_generate_stats(true)
                       .set_causal_mask(true)
                       .set_attn_scale(1.0f / std::sqrt(static_cast<float>(s.hs)));
    auto [o, stats] = g->sdpa(q, k, v, options);
    mark_output(o, kO, s.dims(), s.out_strides());
    mark_output(stats, kStats, {s.B, s.NH, s.T, 1}, {s.NH * s.T, s.T, 1, 1});
    stats->set_data_type(fe::DataType_t::FLOAT);
    return g;
}

std::shared_ptr<fe::graph::Graph> backward_graph(const Shape& s) {
    auto g = new_graph();
    auto q = input(*g, "q", kQ, s.dims(), s.qkv_strides());
    auto k = input(*g, "k", kK, s.dims(), s.qkv_strides());
    auto v = input(*g, "v", kV, s.dims(), s.qkv_strides());
    auto o = input(*g, "o", kO, s.dims(), s.out_strides());
    auto dout = input(*g, "dO", kDO, s.dims(), s.out_strides());
    auto stats = input(*g, "stats", kStats, {s.B, s.NH, s.T, 1}, {s.NH * s.T, s.T, 1, 1});
    stats->set_data_type(fe::DataType_t::FLOAT);
    // Deterministic: same inputs, same bits (DESIGN principle 5), at some cost in speed.
    auto options = fe::graph::SDPA_backward_attributes()
                       .set_name("attention_backward")
                       .set_causal_mask(true)
                       .set_deterministic_algorithm(true)
                       .set_attn_scale(1.0f / std::sqrt(static_cast<float>(s.hs)));
    auto [dq, dk, dv] = g->sdpa_backward(q, k, v, o, dout, stats, options);
    mark_output(dq, kDQ, s.dims(), s.qkv_strides());
    mark_output(dk, kDK, s.dims(), s.qkv_strides());
    mark_output(dv, kDV, s.dims(), s.qkv_strides());
    return g;
}

// Validates and builds a graph for this GPU; the reason when cuDNN cannot run it.
std::string build(fe::graph::Graph& g, cudnnHandle_t handle) {
    std::string why = failure(g.validate());
    if (why.empty()) why = failure(g.build_operation_graph(handle));
    if (why.empty()) why = failure(g.create_execution_plans({fe::HeurMode_t::A}));
    if (why.empty()) why = failure(g.check_support());
    if (why.empty()) why = failure(g.build_plans());
    return why;
}

GraphKey graph_key(bool backward, const Shape& s) {
    return {backward ? 1 : 0, int(s.B), int(s.T), int(s.C), int(s.NH)};
}

// Builds and keeps this direction's graph for the shape; the reason when cuDNN refuses it.
std::string add_graph(CudnnAttention& st, bool backward, const Shape& s) {
    auto g = backward ? backward_graph(s) : forward_graph(s);
    std::string why = build(*g, st.handle);
    if (why.empty()) st.graphs[graph_key(backward, s)] = std::move(g);
    return why;
}

// The graph of a shape that cudnn_attention_refusal accepted (which built both directions).
fe::graph::Graph& built_graph(Context& ctx, bool backward, const Shape& s) {
    const auto& graphs = state(ctx).graphs;
    auto it = graphs.find(graph_key(backward, s));
    require(it != graphs.end(),
            std::string("cuDNN attention ") + (backward ? "backward" : "forward") + " at B=" +
                std::to_string(s.B) + " T=" + std::to_string(s.T) +
                ": no graph (cudnn_attention_refusal must accept the shape first)");
    return *it->second;
}

void execute(Context& ctx, fe::graph::Graph& g, std::unordered_map<int64_t, void*>& pack) {
    int64_t workspace_bytes = 0;
    if (std::string why = failure(g.get_workspace_size(workspace_bytes)); !why.empty())
        throw Error("cuDNN attention: workspace size: " + why);
    void* workspace = workspace_bytes > 0
                          ? ctx.scratch.get(static_cast<size_t>(workspace_bytes), ctx.stream)
                          : nullptr;
    if (std::string why = failure(g.execute(state(ctx).handle, pack, workspace)); !why.empty())
        throw Error("cuDNN attention: " + why);
}

Shape shape_of(int B, int T, int C, int NH) { return {B, T, C, NH, C / NH}; }

// Byte offset of column `elems` in a bf16 tensor.
void* at(const void* p, int64_t elems) {
    return static_cast<char*>(const_cast<void*>(p)) + elems * 2;
}

}  // namespace

std::string cudnn_attention_refusal(Context& ctx, int B, int T, int C, int NH) {
    CudnnAttention& st = state(ctx);
    const ShapeKey key{B, T, C, NH};
    if (auto it = st.refusals.find(key); it != st.refusals.end()) return it->second;
    // Both directions or neither: the backward reads the stats in the format the forward wrote.
    const Shape s = shape_of(B, T, C, NH);
    std::string why = add_graph(st, false, s);
    if (why.empty()) why = add_graph(st, true, s);
    if (!why.empty()) {
        st.graphs.erase(graph_key(false, s));
        std::fprintf(stderr,
                     "note: cuDNN refuses attention at B=%d T=%d C=%d NH=%d: %s; our kernels "
                     "run this shape\n",
                     B, T, C, NH, why.c_str());
    }
    return st.refusals[key] = why;
}

void cudnn_attention_forward(Context& ctx, void* out, float* lse, const void* qkv, int B, int T,
                             int C, int NH) {
    std::unordered_map<int64_t, void*> pack{{kQ, at(qkv, 0)}, {kK, at(qkv, C)}, {kV, at(qkv, 2 * C)},
                                            {kO, out},        {kStats, lse}};
    execute(ctx, built_graph(ctx, false, shape_of(B, T, C, NH)), pack);
}

void cudnn_attention_backward(Context& ctx, void* dqkv, const void* dout, const void* qkv,
                              const void* out, const float* lse, int B, int T, int C, int NH) {
    std::unordered_map<int64_t, void*> pack{
        {kQ, at(qkv, 0)},     {kK, at(qkv, C)},      {kV, at(qkv, 2 * C)},
        {kO, at(out, 0)},     {kDO, at(dout, 0)},    {kStats, const_cast<float*>(lse)},
        {kDQ, at(dqkv, 0)},   {kDK, at(dqkv, C)},    {kDV, at(dqkv, 2 * C)}};
    execute(ctx, built_graph(ctx, true, shape_of(B, T, C, NH)), pack);
}

}  // namespace diloco::cuda
