// The flat parameter layout, built once from a config: names, shapes, offsets, and the flags
// that the initialiser, the optimizer and the checkpoint writer read.
#include "model/layout.h"

#include "util/error.h"

namespace diloco {

namespace {
class LayoutBuilder {
public:
    explicit LayoutBuilder(ParamLayout& layout) : layout_(layout) {}
    size_t add(const std::string& name, std::vector<int64_t> shape, bool decay,
               bool matmul = false, bool residual = false) {
        size_t size = 1;
        for (int64_t d : shape) size *= static_cast<size_t>(d);
        layout_.tensors.push_back({name, shape, layout_.total, size, decay, residual, matmul});
        layout_.total += size;
        return layout_.tensors.back().offset;
    }

private:
    ParamLayout& layout_;
};
}  // namespace

ParamLayout build_layout(const GptConfig& c) {
    ParamLayout layout;
    LayoutBuilder b(layout);
    const int64_t C = c.channels;
    layout.wte = b.add("wte.weight", {c.padded_vocab, C}, true);
    layout.wpe = b.add("wpe.weight", {c.max_seq, C}, true);
    for (int l = 0; l < c.layers; l++) {
        const std::string h = "h." + std::to_string(l) + ".";
        BlockOffsets o;
        o.ln1_w = b.add(h + "ln_1.weight", {C}, false);
        o.ln1_b = b.add(h + "ln_1.bias", {C}, false);
        o.qkv_w = b.add(h + "attn.c_attn.weight", {3 * C, C}, true, true);
        o.qkv_b = b.add(h + "attn.c_attn.bias", {3 * C}, false);
        o.attproj_w = b.add(h + "attn.c_proj.weight", {C, C}, true, true, true);
        o.attproj_b = b.add(h + "attn.c_proj.bias", {C}, false);
        o.ln2_w = b.add(h + "ln_2.weight", {C}, false);
        o.ln2_b = b.add(h + "ln_2.bias", {C}, false);
        o.fc_w = b.add(h + "mlp.c_fc.weight", {4 * C, C}, true, true);
        o.fc_b = b.add(h + "mlp.c_fc.bias", {4 * C}, false);
        o.fcproj_w = b.add(h + "mlp.c_proj.weight", {C, 4 * C}, true, true, true);
        o.fcproj_b = b.add(h + "mlp.c_proj.bias", {C}, false);
        layout.blocks.push_back(o);
    }
    layout.lnf_w = b.add("ln_f.weight", {C}, false);
    layout.lnf_b = b.add("ln_f.bias", {C}, false);
    return layout;
}

const ParamTensor& ParamLayout::find(const std::string& name) const {
    for (const ParamTensor& t : tensors)
        if (t.name == name) return t;
    throw Error("no parameter named '" + name + "'");
}

}  // namespace diloco
