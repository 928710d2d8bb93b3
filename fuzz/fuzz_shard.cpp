// Fuzz target: a token shard, opened with the vocabulary from its header and with a given one,
// then read whole.
#include <vector>

#include "data/shard.h"
#include "fuzz/harness.h"
#include "util/error.h"

static void read_shard(const std::string& path, int vocab) {
    using namespace diloco;
    try {
        ShardFile shard(path, vocab);
        std::vector<int32_t> tokens(shard.size());
        shard.copy(0, shard.size(), tokens.data());
        for (int32_t t : tokens)
            if (t < 0 || t >= shard.vocab()) __builtin_trap();  // the reader promised ids < vocab
    } catch (const Error&) {
    }
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string path = diloco::fuzz::scratch_file("in.bin", diloco::fuzz::as_text(data, size));
    read_shard(path, 0);
    read_shard(path, 300);
    return 0;
}
