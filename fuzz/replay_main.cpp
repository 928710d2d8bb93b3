// The driver of the fuzz harnesses in builds without libFuzzer (gcc, the README's build): runs
// a harness on every seed file and on a bounded number of seeded mutations of each, for ctest.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "fuzz/harness.h"

namespace {

std::string read_bytes(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// One random edit of the kinds that break parsers: a flipped bit, an extreme byte, a cut,
// a deleted, duplicated or inserted span.
void mutate(std::string& s, std::mt19937_64& rng) {
    static const char kExtremes[] = {'\0', '\xff', '\x7f', '\x80', '9', '-', '"', '[', '{', '.'};
    auto pick = [&](size_t n) { return n == 0 ? size_t(0) : size_t(rng() % n); };
    switch (rng() % 6) {
    case 0:
        if (!s.empty()) s[pick(s.size())] ^= char(1u << (rng() % 8));
        break;
    case 1:
        if (!s.empty()) s[pick(s.size())] = kExtremes[pick(sizeof kExtremes)];
        break;
    case 2: s.resize(pick(s.size() + 1)); break;
    case 3: {
        const size_t at = pick(s.size() + 1);
        s.erase(at, pick(17));
        break;
    }
    case 4: {
        const size_t at = pick(s.size() + 1), len = pick(65);
        s.insert(pick(s.size() + 1), s.substr(at, len));
        break;
    }
    default: s.insert(pick(s.size() + 1), std::string(1 + pick(8), kExtremes[pick(10)]));
    }
}

void run(const std::string& input) {
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
}

}  // namespace

// Usage: NAME [-runs=N] SEED_DIR...   (N mutated inputs per seed file, 1 to 4 edits each)
int main(int argc, char** argv) {
    long runs = 200;
    std::vector<std::string> seeds;
    for (int i = 1; i < argc; i++) {
        const std::string arg = argv[i];
        if (arg.starts_with("-runs=")) {
            runs = std::strtol(arg.c_str() + 6, nullptr, 10);
            continue;
        }
        for (const auto& entry : std::filesystem::directory_iterator(arg))
            if (entry.is_regular_file()) seeds.push_back(read_bytes(entry.path()));
    }
    if (seeds.empty()) {
        std::fprintf(stderr, "%s: no seed files given\n", argv[0]);
        return 2;
    }
    std::mt19937_64 rng(20240520);
    long inputs = 0;
    for (const std::string& seed : seeds) {
        run(seed);
        inputs++;
        for (long r = 0; r < runs; r++, inputs++) {
            std::string input = seed;
            for (int edits = 1 + int(rng() % 4); edits > 0; edits--) mutate(input, rng);
            run(input);
        }
    }
    std::printf("%s: %ld inputs from %zu seeds, no failure\n", argv[0], inputs, seeds.size());
    return 0;
}
