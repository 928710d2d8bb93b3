// The cost model behind `diloco plan`: compute utilisation and wall time of ddp, DiLoCo and
// Streaming DiLoCo over a slow link, and the bandwidth each needs to reach a given utilisation.
#pragma once

#include <cstdint>

#include "comm/codec.h"
#include "comm/wan.h"

namespace diloco {

// The model. K islands each have a link of G Gbit/s and pay a latency L per collective; an
// inner step computes for s seconds; a model has N parameters. An island sends 2 (K - 1) / K of
// what it reduces, as a ring all-reduce (or our sharded sync) does. Over one round of H inner
// steps:
//   ddp        H syncs of the fp32 gradient, 4N bytes, in 2 collectives (reduce-scatter and
//              all-gather, as the sharded sync does), nothing overlapped with compute;
//   diloco     1 sync of the outer gradient, encoded_bytes(codec, N), in 3 collectives (the
//              islands' notes of who takes part, reduce-scatter, all-gather), blocking;
//   streaming  F staggered syncs of one fragment, encoded_bytes(codec, ceil(N / F)), in 3
//              collectives each, of which up to TAU inner steps (TAU s) hide behind compute.
// A sync costs w = max(0, collectives L + 8 bytes / G - hidden); the round takes H s + syncs w,
// and the utilisation is H s over that. Bandwidth is the only unknown in it, so the G reaching
// a utilisation u has a closed form; it is infinite when latency alone costs more than u allows.
enum class Method { ddp, diloco, streaming };

struct PlanInput {
    uint64_t params = 0;
    double step_seconds = 0;
    int islands = 4;
    int inner_steps = 100;
    int fragments = 4;
    int overlap = 1;  // TAU, in inner steps
    Codec codec = Codec::fp32;
    WanLink link{1, 0};  // gbps 0: unlimited
};

// An Error naming the first impossible option (`--islands`, `--overlap`, ...).
void validate(const PlanInput& in);

// One method's round of H inner steps, as the model above sees it.
struct RoundCost {
    double compute_seconds = 0;  // H s
    int syncs = 0;
    int collectives = 0;          // per sync
    double latency_seconds = 0;   // per collective
    double bytes = 0;             // sent per island per sync
    double hidden_seconds = 0;    // of each sync, overlapped with compute
};

RoundCost round_cost(const PlanInput& in, Method method);
const char* method_name(Method method);

// Seconds one sync of the method waits on the link, with nothing hidden behind compute.
double sync_seconds(const PlanInput& in, Method method);
// Wall time of the round over a link of gbps (0: unlimited bandwidth).
double round_seconds(const RoundCost& round, double gbps);
double utilisation(const RoundCost& round, double gbps);
// The smallest bandwidth giving this utilisation (0 < target < 1); +infinity when none does.
double gbps_needed(const RoundCost& round, double target);

}  // namespace diloco
