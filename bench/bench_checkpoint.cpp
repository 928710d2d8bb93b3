// Bench of model checkpoints: save_model and load_model of a preset's parameters, in GB/s of
// fp32 bytes, beside the file system writing and reading the same bytes alone (the ceiling).
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "bench/median.h"
#include "model/checkpoint.h"
#include "model/config.h"
#include "model/gpt.h"
#include "model/layout.h"
#include "util/error.h"
#include "util/files.h"

using namespace diloco;

namespace {

constexpr int kReps = 3;

int run(const std::string& preset, const std::string& dir) {
    const GptConfig config = preset_config(preset, 50257);
    // GPT-2's initialisation: the padded vocabulary rows are zero, as a checkpoint restores them.
    const std::vector<float> params = init_gpt2_params(config, build_layout(config), 1);
    require_writable_dir(dir, "bench_checkpoint");
    const double gb = 4.0 * double(params.size()) / 1e9;

    // The ceiling: the same bytes written (with fsync, renamed into place) and read back.
    const std::string raw_file = dir + "/raw.bin";
    const std::string_view raw(reinterpret_cast<const char*>(params.data()), 4 * params.size());
    const double raw_write = bench::median_seconds(kReps, [&] { write_file_atomic(raw_file, raw); });
    const double raw_read = bench::median_seconds(kReps, [&] { read_file(raw_file); });
    const std::string model_dir = dir + "/model";
    const double save = bench::median_seconds(kReps, [&] { save_model(model_dir, config, params, {}); });
    const double load = bench::median_seconds(kReps, [&] { load_model(model_dir); });
    require(load_model(model_dir).params == params, "bench_checkpoint: load differs from save");
    std::filesystem::remove_all(model_dir);
    std::filesystem::remove(raw_file);

    std::printf("checkpoint bench: %s with the GPT-2 vocabulary, %zu parameters (%.2f GB), "
                "median of %d, in %s\n",
                preset.c_str(), params.size(), gb, kReps, dir.c_str());
    std::printf("%-6s %10s %12s %14s %9s\n", "", "seconds", "GB/s", "ceiling GB/s", "of it");
    std::printf("%-6s %10.3f %12.2f %14.2f %8.0f%%\n", "save", save, gb / save, gb / raw_write,
                100 * raw_write / save);
    std::printf("%-6s %10.3f %12.2f %14.2f %8.0f%%\n", "load", load, gb / load, gb / raw_read,
                100 * raw_read / load);
    std::printf("\nceiling: the same bytes through write_file_atomic (fsync, rename) and "
                "read_file\n");
    return 0;
}

}  // namespace

// bench_checkpoint [PRESET] [DIR]: default gpt2-124m in the system's temporary directory.
int main(int argc, char** argv) {
    const std::string preset = argc > 1 ? argv[1] : "gpt2-124m";
    const std::string dir =
        argc > 2 ? argv[2]
                 : (std::filesystem::temp_directory_path() / "diloco-bench-checkpoint").string();
    try {
        return run(preset, dir);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_checkpoint: %s\n", e.what());
        return 1;
    }
}
