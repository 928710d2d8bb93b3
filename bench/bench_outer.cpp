// Bench of DiLoCo's outer step across the islands of an mpirun job (one rank per island) on a
// preset's parameter count: the split that `diloco train` reports, beside a copy of the model.
//
//   mpirun -np K bench_outer [--preset gpt2-124m] [--codec fp32,int4] [--reps 5]
//                            [--sync-timeout S]  (0: MPI_Wait; > 0: the deadline's polling)
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "bench/median.h"
#include "comm/comm.h"
#include "comm/outer_sync.h"
#include "model/config.h"
#include "model/layout.h"
#include "optim/outer.h"
#include "util/error.h"
#include "util/parse.h"
#include "util/rng.h"
#include "util/timer.h"

using namespace diloco;

namespace {

struct Options {
    std::string preset = "gpt2-124m";
    std::vector<Codec> codecs = {Codec::fp32, Codec::int4};
    int reps = 5;
    double sync_timeout = 600;  // train's default: the deadline's polling path
};

Codec codec_named(const std::string& name) {
    for (Codec c : kCodecs)
        if (name == codec_name(c)) return c;
    throw Error("bench_outer: unknown codec '" + name + "'");
}

Options parse_options(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; i++) {
        const std::string arg = argv[i];
        require(i + 1 < argc, "bench_outer: " + arg + " needs a value");
        const std::string value = argv[++i];
        if (arg == "--preset") {
            o.preset = value;
        } else if (arg == "--codec") {
            o.codecs.clear();
            for (size_t at = 0; at <= value.size();) {
                const size_t comma = std::min(value.find(',', at), value.size());
                o.codecs.push_back(codec_named(value.substr(at, comma - at)));
                at = comma + 1;
            }
        } else if (arg == "--reps") {
            require(parse_int(value, o.reps) && o.reps > 0,
                    "bench_outer: --reps must be a positive integer");
        } else if (arg == "--sync-timeout") {
            require(parse_double(value, o.sync_timeout) && o.sync_timeout >= 0,
                    "bench_outer: --sync-timeout must be a number of seconds >= 0");
        } else {
            throw Error("bench_outer: unknown option " + arg);
        }
    }
    return o;
}

struct Sample {
    OuterSplit split;
    uint64_t bytes = 0;  // this rank's, sent and received
};

// One outer step as DilocoLoop takes it on the CPU: the island's parameters copied out of the
// model (its outer gradient for a lossy codec), the mean with each owner's outer step on its
// share (fp32) or the outer step after it, the result copied in.
Sample outer_step(OuterSync& sync, OuterOptimizer& outer, Codec codec, std::vector<float>& model,
                  std::vector<float>& global, std::vector<float>& payload, int step) {
    const size_t n = model.size();
    Sample s;
    SyncStats stats;
    timed(s.split.download, [&] {
        std::memcpy(payload.data(), model.data(), n * sizeof(float));
        if (codec == Codec::fp32) return;
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) payload[i] = global[i] - payload[i];
    });
    std::vector<IslandNote> notes;
    if (codec == Codec::fp32) {  // each owner steps its share, and the new parameters go out
        const OwnerStep owner_step = [&](float* mean, size_t at, size_t len) {
            outer.step_share(global.data() + at, mean, {at, at + len, step});
        };
        sync.weighted_mean(payload.data(), n, {1.0, 0.0}, notes, stats, {codec}, owner_step,
                           global.data());
    } else {
        sync.weighted_mean(payload.data(), n, {1.0, 0.0}, notes, stats, {codec});
        timed(s.split.optimizer,
              [&] { outer.step_by_delta(global.data(), payload.data(), {0, n, step}); });
    }
    timed(s.split.upload,
          [&] { std::memcpy(model.data(), global.data(), n * sizeof(float)); });
    s.split.codec = stats.split.codec;
    s.split.exchange = stats.split.exchange;
    s.split.optimizer += stats.split.optimizer;
    s.bytes = stats.bytes_sent + stats.bytes_received;
    return s;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

void bench_codec(IslandComms& comms, const Options& o, Codec codec, size_t n, double copy_ms) {
    std::vector<float> model(n), global(n), payload(n);
    Rng rng(7, comms.topology.island);
    for (size_t i = 0; i < n; i++) {
        global[i] = float(0.02 * rng.normal());
        model[i] = global[i] + float(1e-3 * rng.normal());
    }
    OuterSync sync(comms);
    OuterOptimizer outer(OuterOptConfig{}, n);
    std::vector<double> parts[6];
    uint64_t bytes = 0;
    for (int rep = 0; rep <= o.reps; rep++) {  // rep 0 warms the buffers up and is not counted
        comms.world->barrier();
        const Sample s = outer_step(sync, outer, codec, model, global, payload, rep + 1);
        if (rep == 0) continue;
        const double ms[6] = {s.split.download, s.split.codec,  s.split.exchange,
                              s.split.optimizer, s.split.upload, s.split.total()};
        for (int p = 0; p < 6; p++) parts[p].push_back(ms[p] * 1e3);
        bytes = s.bytes;
    }
    if (comms.topology.world_rank != 0) return;
    const double exchange = median(parts[2]);
    std::printf("%-5s %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f %8.2f %11.2f\n", codec_name(codec),
                median(parts[0]), median(parts[1]), exchange, median(parts[3]), median(parts[4]),
                median(parts[5]), median(parts[5]) / copy_ms, bytes / exchange / 1e6);
}

}  // namespace

int main(int argc, char** argv) {
    try {
        std::unique_ptr<Comm> world = world_comm(&argc, &argv);
        const Options o = parse_options(argc, argv);
        IslandComms comms = connect_islands(*world, std::to_string(world->size()), "");
        for (Comm* c : {world.get(), comms.cross.get(), comms.leaders.get()})
            c->set_deadline(o.sync_timeout, comms.topology.island_of_rank);
        const size_t n = build_layout(preset_config(o.preset, 50257)).total;
        std::vector<float> a(n, 1.0f), b(n);
        const double copy_ms = 1e3 * bench::median_seconds(o.reps, [&] {
            std::memcpy(b.data(), a.data(), n * sizeof(float));
        });
        if (world->rank() == 0) {
            std::printf("outer step bench: %s (%zu parameters, %.0f MB in fp32), %d islands of "
                        "1 rank, %d threads each, --sync-timeout %g, median of %d (ms)\n",
                        o.preset.c_str(), n, n * 4 / 1e6, world->size(), omp_get_max_threads(),
                        o.sync_timeout, o.reps);
            std::printf("yardstick: one memcpy of the model %.1f ms (%.1f GB/s)\n", copy_ms,
                        n * 4 / copy_ms / 1e6);
            std::printf("%-5s %9s %9s %9s %9s %9s %9s %8s %11s\n", "codec", "download", "codec",
                        "exchange", "optimizer", "upload", "total", "copies", "wire GB/s");
        }
        for (Codec codec : o.codecs) bench_codec(comms, o, codec, n, copy_ms);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_outer: %s\n", e.what());
        abort_world(1);
    }
}
