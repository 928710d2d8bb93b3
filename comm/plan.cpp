// The `diloco plan` cost model: each method's bytes, collectives and overlap per round of H
// inner steps, its utilisation over a link, and that formula solved for the bandwidth.
#include "comm/plan.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "util/error.h"

namespace diloco {

void validate(const PlanInput& in) {
    validate(in.link);
    require(in.params > 0, "--params must be at least 1");
    require(std::isfinite(in.step_seconds) && in.step_seconds > 0,
            "--step-ms must be a positive number of milliseconds per inner step");
    require(in.islands >= 2, "--islands must be at least 2: one island has no link to plan");
    require(in.inner_steps >= 1, "--inner-steps must be at least 1");
    require(in.fragments >= 1 && in.fragments <= in.inner_steps,
            "--fragments must be between 1 and --inner-steps (" +
                std::to_string(in.inner_steps) + "): each fragment syncs at its own step");
    // As in training: a fragment's sync is merged before the next one starts.
    require(in.overlap >= 0 && in.overlap < in.inner_steps / in.fragments,
            "--overlap must be below --inner-steps / --fragments (" +
                std::to_string(in.inner_steps / in.fragments) + ")");
}

const char* method_name(Method method) {
    switch (method) {
        case Method::ddp: return "ddp";
        case Method::diloco: return "diloco";
        case Method::streaming: return "streaming";
    }
    return "?";
}

RoundCost round_cost(const PlanInput& in, Method method) {
    double ring = 2.0 * (in.islands - 1) / in.islands;
    RoundCost r;
    r.compute_seconds = in.inner_steps * in.step_seconds;
    r.latency_seconds = in.link.latency_ms / 1000;
    switch (method) {
        case Method::ddp:
            r.syncs = in.inner_steps;
            r.collectives = 2;
            r.bytes = ring * 4.0 * double(in.params);
            break;
        case Method::diloco:
            r.syncs = 1;
            r.collectives = 3;
            r.bytes = ring * double(encoded_bytes(in.codec, in.params));
            break;
        case Method::streaming: {
            uint64_t largest_fragment = (in.params + in.fragments - 1) / in.fragments;
            r.syncs = in.fragments;
            r.collectives = 3;
            r.bytes = ring * double(encoded_bytes(in.codec, largest_fragment));
            r.hidden_seconds = in.overlap * in.step_seconds;
            break;
        }
    }
    return r;
}

namespace {

// What one sync costs on the link before any of it hides behind compute.
double link_seconds(const RoundCost& r, double gbps) {
    const double transfer = gbps > 0 ? 8 * r.bytes / (gbps * 1e9) : 0;
    return r.collectives * r.latency_seconds + transfer;
}

}  // namespace

double sync_seconds(const PlanInput& in, Method method) {
    return link_seconds(round_cost(in, method), in.link.gbps);
}

double round_seconds(const RoundCost& r, double gbps) {
    double wait = std::max(0.0, link_seconds(r, gbps) - r.hidden_seconds);
    return r.compute_seconds + r.syncs * wait;
}

double utilisation(const RoundCost& r, double gbps) {
    return r.compute_seconds / round_seconds(r, gbps);
}

// From target = H s / (H s + syncs w): each sync may wait w = H s (1 - target) / (target syncs),
// which leaves w + hidden - collectives L seconds for 8 bytes / G.
double gbps_needed(const RoundCost& r, double target) {
    require(target > 0 && target < 1, "a target utilisation must lie strictly between 0 and 1");
    double wait = r.compute_seconds * (1 - target) / (target * r.syncs);
    double transfer = wait + r.hidden_seconds - r.collectives * r.latency_seconds;
    if (transfer <= 0) return std::numeric_limits<double>::infinity();
    return 8 * r.bytes / transfer / 1e9;
}

}  // namespace diloco
