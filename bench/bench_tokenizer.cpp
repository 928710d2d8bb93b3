// Tokenizer bench: GPT-2 encoding speed on Tiny Shakespeare and 1,000 C4 documents, one thread and
// all threads, beside tiktoken's WASM build as the peer; and the time to train an 8,000-token BPE.
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <thread>

#include "data/bpe_trainer.h"
#include "data/tokenizer.h"
#include "util/error.h"
#include "util/files.h"

using namespace diloco;

namespace {

// tiktoken's WASM build, measured on one core of the development machine; not rerun here.
constexpr const char* kPeer = "tiktoken WASM, one core: ~4-5 MB/s";

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Median seconds of several runs.
double median_seconds(const std::function<void()>& run, int reps) {
    std::vector<double> times;
    for (int i = 0; i < reps; i++) {
        auto start = std::chrono::steady_clock::now();
        run();
        times.push_back(seconds_since(start));
    }
    std::sort(times.begin(), times.end());
    return times[times.size() / 2];
}

std::string require_path(const std::string& path, const char* what) {
    require(std::filesystem::exists(path),
            path + ": not found (" + what +
                "); run from the project root next to ../shared, or pass the paths: "
                "bench_tokenizer [GPT2_DIR [DATA_DIR]]");
    return path;
}

// The "text" fields of a JSON-lines .gz file, one document per line, joined by newlines.
std::string read_c4(const std::string& path) {
    gzFile f = gzopen(path.c_str(), "rb");
    require(f != nullptr, path + ": cannot open");
    std::string all, text;
    char buf[1 << 16];
    for (int n; (n = gzread(f, buf, sizeof buf)) > 0;) all.append(buf, n);
    gzclose(f);
    for (size_t pos = 0, end; pos < all.size(); pos = end + 1) {
        end = std::min(all.find('\n', pos), all.size());
        if (end == pos) continue;
        text += nlohmann::json::parse(all.substr(pos, end - pos))["text"].get<std::string>();
        text += "\n";
    }
    return text;
}

void bench_corpus(const Tokenizer& tok, const char* name, const std::string& text, int threads) {
    size_t tokens = 0;
    double one = median_seconds([&] { tokens = tok.encode(text).size(); }, 5);
    double all = median_seconds([&] { tok.encode_parallel(text, threads); }, 5);
    double mb = text.size() / 1e6;
    std::printf("%-22s %8.2f %10zu %14.1f %14.1f\n", name, mb, tokens, mb / one, mb / all);
}

}  // namespace

int main(int argc, char** argv) try {
    std::string gpt2_dir = argc > 1 ? argv[1] : "../shared/data/gpt2";
    std::string data_dir = argc > 2 ? argv[2] : "../shared/data";
    Tokenizer tok = Tokenizer::load(require_path(gpt2_dir, "the GPT-2 encoder.json + vocab.bpe"));
    std::string shakespeare =
        read_file(require_path(data_dir + "/tinyshakespeare/input.txt", "Tiny Shakespeare"));
    std::string c4 = read_c4(
        require_path(data_dir + "/c4/c4-train.00000-of-01024.first1000.json.gz", "the C4 sample"));
    int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));

    std::string all_threads = std::to_string(threads) + " threads MB/s";
    std::printf("%-22s %8s %10s %14s %14s\n", "GPT-2 encode, median/5", "MB", "tokens",
                "1 thread MB/s", all_threads.c_str());
    bench_corpus(tok, "Tiny Shakespeare", shakespeare, threads);
    bench_corpus(tok, "C4, 1,000 documents", c4, threads);
    std::printf("peer: %s\n", kPeer);

    double train_s = median_seconds([&] { train_bpe(shakespeare, 8000); }, 3);
    std::printf("\nBPE training, 8,000 tokens on Tiny Shakespeare (median of 3): %.2f s\n",
                train_s);
    return 0;
} catch (const Error& e) {
    std::fprintf(stderr, "bench_tokenizer: error: %s\n", e.what());
    return 1;
}
