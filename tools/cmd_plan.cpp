// `diloco plan`: for a model, a step time and a link, the bandwidth ddp, DiLoCo and Streaming
// DiLoCo need to reach a range of compute utilisations, and how each fares on the given link.
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "comm/plan.h"
#include "model/config.h"
#include "model/layout.h"
#include "tools/commands.h"
#include "tools/config_file.h"
#include "tools/options.h"
#include "util/error.h"
#include "util/format.h"

namespace diloco {

namespace {

// The columns of the Streaming DiLoCo paper's table of simulated compute utilisation.
constexpr double kTargets[] = {0.50, 0.80, 0.90, 0.95, 0.99};
constexpr Method kMethods[] = {Method::ddp, Method::diloco, Method::streaming};

struct PlanOptions {
    std::string config;
    std::string preset;
    int vocab = 0;
    double params = 0;  // a double, so that 1.5e9 reads as it does in papers
    double step_ms = 0;
    int islands = 4;
    int inner_steps = 100;
    int fragments = 4;
    int overlap = 1;
    Codec outer_codec = Codec::fp32;
    double wan_gbps = 1;
    double wan_latency_ms = 0;
    bool json = false;
};

// The vocabulary a preset is usually trained with: bytes for tiny (the built-in corpus),
// GPT-2's tokenizer for the others. It matters: the embedding is a large part of small models.
uint64_t preset_params(const std::string& preset, int vocab) {
    if (vocab == 0) vocab = preset == "tiny" ? 256 : 50257;
    GptConfig config = preset_config(preset, vocab);
    validate(config);
    return build_layout(config).total;
}

uint64_t whole_params(double params) {
    require(params >= 1 && params <= 1e15 && params == std::floor(params),
            "--params must be a whole number of parameters between 1 and 1e15");
    return uint64_t(params);
}

PlanInput plan_input(const PlanOptions& o, bool params_given) {
    require(params_given || !o.preset.empty(), "give the model size: --preset NAME or --params N");
    PlanInput in;
    in.params = params_given ? whole_params(o.params) : preset_params(o.preset, o.vocab);
    in.step_seconds = o.step_ms / 1000;
    in.islands = o.islands;
    in.inner_steps = o.inner_steps;
    in.fragments = o.fragments;
    in.overlap = o.overlap;
    in.codec = o.outer_codec;
    in.link = WanLink{o.wan_gbps, o.wan_latency_ms};
    validate(in);
    return in;
}

// Three significant digits without an exponent for the usual range, "inf" when unreachable.
std::string gbps_text(double gbps) {
    if (std::isinf(gbps)) return "inf";
    char text[32];
    const char* format = gbps >= 100 ? "%.0f" : gbps >= 10 ? "%.1f" : gbps >= 1 ? "%.2f" : "%.3g";
    std::snprintf(text, sizeof text, format, gbps);
    return text;
}

std::string row_label(const PlanInput& in, Method method) {
    switch (method) {
        case Method::ddp: return "ddp";
        case Method::diloco: return "diloco (H=" + std::to_string(in.inner_steps) + ")";
        case Method::streaming:
            return "streaming (F=" + std::to_string(in.fragments) +
                   ", TAU=" + std::to_string(in.overlap) + ")";
    }
    return "?";
}

void print_table(const PlanInput& in, const std::string& model) {
    std::printf("diloco plan: %s parameters (%s), %g ms per inner step, %d islands, H = %d, "
                "outer codec %s\n",
                thousands(in.params).c_str(), model.c_str(), in.step_seconds * 1000, in.islands,
                in.inner_steps, codec_name(in.codec));
    char link[48] = "unlimited";
    if (in.link.gbps > 0) std::snprintf(link, sizeof link, "%g Gbit/s", in.link.gbps);
    std::printf("link per island: %s, %g ms latency per collective\n\n", link,
                in.link.latency_ms);
    std::string per_round = " / " + std::to_string(in.inner_steps) + " steps";
    std::printf("%-24s%-45s   at %s\n", "", "  Gbit/s needed for compute utilisation", link);
    std::printf("%-24s", "method");
    for (double u : kTargets) std::printf(" %7.0f%%", u * 100);
    std::printf("   %11s %14s %14s\n", "utilisation", ("s" + per_round).c_str(),
                ("GB" + per_round).c_str());
    for (Method method : kMethods) {
        RoundCost round = round_cost(in, method);
        std::printf("%-24s", row_label(in, method).c_str());
        for (double u : kTargets) std::printf(" %8s", gbps_text(gbps_needed(round, u)).c_str());
        std::printf("   %10.1f%% %14.2f %14.3f\n", 100 * utilisation(round, in.link.gbps),
                    round_seconds(round, in.link.gbps), round.syncs * round.bytes / 1e9);
    }
    std::printf("\nGB: sent per island. inf: the link's latency alone prevents it.\n");
}

// The same numbers; an unreachable utilisation's bandwidth (infinite) is written as null, and
// so is the preset when --params gave the size.
void print_json(const PlanInput& in, const std::string& preset) {
    nlohmann::json methods = nlohmann::json::array();
    for (Method method : kMethods) {
        RoundCost round = round_cost(in, method);
        nlohmann::json needed = nlohmann::json::array();
        for (double u : kTargets) needed.push_back(gbps_needed(round, u));
        methods.push_back({{"method", method_name(method)},
                           {"gbps_needed", needed},
                           {"utilisation", utilisation(round, in.link.gbps)},
                           {"seconds_per_round", round_seconds(round, in.link.gbps)},
                           {"bytes_per_round", round.syncs * round.bytes}});
    }
    nlohmann::json out = {{"preset", preset.empty() ? nlohmann::json() : nlohmann::json(preset)},
                          {"params", in.params},
                          {"step_ms", in.step_seconds * 1000},
                          {"islands", in.islands},
                          {"inner_steps", in.inner_steps},
                          {"fragments", in.fragments},
                          {"overlap", in.overlap},
                          {"outer_codec", codec_name(in.codec)},
                          {"wan_gbps", in.link.gbps},
                          {"wan_latency_ms", in.link.latency_ms},
                          {"targets", kTargets},
                          {"methods", methods}};
    std::printf("%s\n", out.dump().c_str());
}

void run_plan(const PlanOptions& o, bool params_given) {
    PlanInput in = plan_input(o, params_given);
    if (o.json)
        print_json(in, params_given ? "" : o.preset);
    else
        print_table(in, params_given ? "--params" : o.preset);
}

}  // namespace

void add_plan_command(CLI::App& app) {
    auto o = std::make_shared<PlanOptions>();
    CLI::App* cmd = app.add_subcommand(
        "plan", "compute utilisation of ddp, DiLoCo and Streaming DiLoCo over a slow link");
    add_config_option(*cmd, o->config);
    cmd->add_option("--preset", o->preset, "model shape: tiny, gpt2-124m, paper-60m, "
                                           "paper-150m, paper-400m");
    add_number(*cmd, "--vocab", o->vocab, {.min = 0, .max = 1 << 24},
               "vocabulary of --preset (0: 256 for tiny, 50257 for the others)");
    add_number(*cmd, "--params", o->params, {.min = 1, .max = 1e15},
               "parameter count, e.g. 1.5e9 (instead of --preset)")
        ->default_str("");
    add_number(*cmd, "--step-ms", o->step_ms, {.min = 0, .min_open = true},
               "compute time of one inner step, milliseconds")
        ->default_str("");
    add_number(*cmd, "--islands", o->islands, {.min = 2, .max = 4096},
               "K: islands, each with its own link");
    add_number(*cmd, "--inner-steps", o->inner_steps, {.min = 1, .max = 1'000'000'000},
               "H: inner steps between outer steps");
    add_number(*cmd, "--fragments", o->fragments, {.min = 1, .max = 1024},
               "F: Streaming DiLoCo's fragments");
    add_number(*cmd, "--overlap", o->overlap, {.min = 0, .max = 1'000'000'000},
               "TAU: inner steps a fragment's sync may overlap (streaming)");
    add_enum_option(*cmd, "--outer-codec", o->outer_codec, kCodecs, codec_name,
                    "DiLoCo's and streaming's wire format: fp32, bf16, fp16, int8, e3m0, int4");
    add_number(*cmd, "--wan-gbps", o->wan_gbps, {.min = 0},
               "link bandwidth per island, Gbit/s (0: unlimited)");
    add_number(*cmd, "--wan-latency-ms", o->wan_latency_ms, {.min = 0},
               "link latency per collective, ms");
    cmd->add_flag("--json", o->json, "print one JSON object instead of the table");
    cmd->callback([o, cmd] {
        apply_config_file(*cmd, o->config);
        run_plan(*o, cmd->count("--params") > 0);
    });
}

}  // namespace diloco
