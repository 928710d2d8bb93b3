// Tokenizer bench: GPT-2 encoding speed on Tiny Shakespeare and 1,000 C4 documents, one thread and
// all threads, beside tiktoken run in the same process tree on the same text, ids compared; and the
// time to train an 8,000-token BPE.
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <thread>

#include "data/bpe_trainer.h"
#include "data/tokenizer.h"
#include "bench/peer.h"
#include "util/error.h"
#include "util/files.h"

using namespace diloco;
using namespace diloco::bench;

namespace {

constexpr int kReps = 5;

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

std::vector<int32_t> read_ids(const std::string& path) {
    std::string bytes = read_file(path);
    std::vector<int32_t> ids(bytes.size() / sizeof(int32_t));
    std::memcpy(ids.data(), bytes.data(), ids.size() * sizeof(int32_t));
    return ids;
}

// A scratch file that removes itself.
struct TempFile {
    std::string path;
    TempFile() {
        char name[] = "/tmp/diloco_bench_tokenizer_XXXXXX";
        int fd = mkstemp(name);
        require(fd >= 0, "cannot create a temporary file in /tmp");
        close(fd);
        path = name;
    }
    ~TempFile() { std::remove(path.c_str()); }
};

struct Peer {
    std::string python, gpt2_dir;
    int threads;
};

// tiktoken on the same text: its seconds on one thread and on all, and whether its ids (both
// ways) equal ours.
struct PeerResult {
    double one = 0, all = 0;
    bool same_ids = false;
    std::string version;
};

PeerResult run_tiktoken(const Peer& peer, const std::string& text,
                        const std::vector<int32_t>& ours) {
    TempFile text_file, ids_one, ids_all;
    write_file_atomic(text_file.path, text);
    std::string args = shell_quote(peer.gpt2_dir) + " " + shell_quote(text_file.path) + " " +
                       std::to_string(peer.threads) + " " + std::to_string(kReps) + " " +
                       shell_quote(ids_one.path) + " " + shell_quote(ids_all.path);
    std::string answer = run_peer_script(peer.python, "tiktoken_peer.py", args);
    PeerResult r;
    char version[64] = {};
    require(std::sscanf(answer.c_str(), "%63s %lf %lf", version, &r.one, &r.all) == 3,
            "tiktoken_peer.py: unexpected answer '" + answer + "'");
    r.version = version;
    r.same_ids = read_ids(ids_one.path) == ours && read_ids(ids_all.path) == ours;
    return r;
}

// Ours then tiktoken's, one thread and all threads; returns false when the ids differ.
bool bench_corpus(const Tokenizer& tok, const Peer& peer, const char* name,
                  const std::string& text) {
    std::vector<int32_t> ids, ids_parallel;
    double one = median_seconds([&] { ids = tok.encode(text); }, kReps);
    double all = median_seconds([&] { ids_parallel = tok.encode_parallel(text, peer.threads); },
                                kReps);
    require(ids == ids_parallel, std::string(name) + ": encode_parallel differs from encode");
    double mb = text.size() / 1e6;
    std::printf("%-20s %6.2f %8zu | ours %6.2f %6.2f MB/s", name, mb, ids.size(), mb / one,
                mb / all);
    if (peer.python.empty()) {
        std::printf("\n");
        return true;
    }
    PeerResult t = run_tiktoken(peer, text, ids);
    std::printf(" | tiktoken %6.2f %6.2f MB/s | ratio %5.2fx %5.2fx | ids %s\n", mb / t.one,
                mb / t.all, t.one / one, t.all / all, t.same_ids ? "equal" : "DIFFER");
    return t.same_ids;
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
    Peer peer{peers_python(), gpt2_dir,
              static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))};

    std::printf("GPT-2 encode, median of %d: MB/s on 1 thread and on %d threads; ratio = ours / "
                "tiktoken\n",
                kReps, peer.threads);
    if (peer.python.empty())
        std::printf("peer (tiktoken) NOT run: no peers' python (scripts/peers.sh makes it, or "
                    "set DILOCO_PEERS_PYTHON)\n");
    std::printf("%-20s %6s %8s\n", "corpus", "MB", "tokens");
    bool exact = bench_corpus(tok, peer, "Tiny Shakespeare", shakespeare);
    exact = bench_corpus(tok, peer, "C4, 1,000 documents", c4) && exact;

    double train_s = median_seconds([&] { train_bpe(shakespeare, 8000); }, 3);
    std::printf("\nBPE training, 8,000 tokens on Tiny Shakespeare (median of 3): %.2f s\n",
                train_s);
    if (!exact) std::fprintf(stderr, "bench_tokenizer: error: our ids differ from tiktoken's\n");
    return exact ? 0 : 1;
} catch (const Error& e) {
    std::fprintf(stderr, "bench_tokenizer: error: %s\n", e.what());
    return 1;
}
