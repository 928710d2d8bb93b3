// `diloco train`'s options, bound by the command line (and TOML) straight into the library's
// configurations, and the run they build: communicators, data, device, trainer and loop.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "comm/topology.h"
#include "comm/wan.h"
#include "data/train_data.h"
#include "optim/diloco.h"
#include "optim/inner.h"
#include "tools/device.h"
#include "tools/throughput.h"

namespace diloco {

struct TrainOptions {
    std::string config;  // a TOML file of these options
    std::string preset = "tiny";
    std::string data;  // empty: the built-in corpus
    double val_fraction = 0.1;
    InnerConfig inner;    // batch (also of validation), seq, grad_accum, schedule, adamw, seed
    DilocoConfig diloco;  // mode, H, the outer step, islands' presence, codec, streaming
    bool mode_given = false;  // else: diloco with more than one island, local with one
    DeviceOptions device;
    WanLink wan;
    std::string islands = "1";
    std::string island_sizes;
    std::string island_ids;  // empty: 0..K-1
    double sync_timeout = 600;
    std::vector<int> island_batch;  // rows per micro-batch and rank of each island; none: batch
    uint64_t batch_tokens = 0;
    int stop_at = 0;
    int eval_every = 100;
    int val_batches = 20;
    int print_every = 1;
    std::string log;
    std::string save;
    int save_every = 0;
    int keep = 3;
    std::string resume;
    std::string init;
    double peak_tflops = 0;

    int steps() const { return inner.schedule.total_steps; }
    Mode mode() const { return diloco.mode; }
    // The step this run stops after.
    int last_step() const { return stop_at > 0 ? stop_at : steps(); }
};

// Everything a run holds, built collectively (same errors on every rank, or an agreed exit).
struct Run {
    IslandComms comms;
    std::unique_ptr<TrainData> data;
    Device device;
    std::unique_ptr<InnerTrainer> trainer;
    std::unique_ptr<DilocoLoop> loop;  // goes before the device: it may hold NCCL on its stream
    bool nccl = false;                 // the island averages gradients over NCCL
    PeakRate peak;                     // rank 0's, for its MFU
};

}  // namespace diloco
