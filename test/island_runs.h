// Helpers for tests that run islands through the CLI: the common small-run flags, metrics
// records, saved parameters, a synthetic corpus, and a success check that prints the output.
#pragma once

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "model/checkpoint.h"
#include "test/helpers.h"

namespace diloco::test::islands {

inline const char* kRun = " --batch 2 --seq 16 --val-batches 2 --warmup 2 --lr 2e-3";
inline const char* kMean = " --outer-opt sgd --outer-lr 1 --outer-momentum 0";

inline std::vector<nlohmann::json> records(const std::string& path) {
    std::vector<nlohmann::json> out;
    std::istringstream lines(read_text(path));
    for (std::string line; std::getline(lines, line);) out.push_back(nlohmann::json::parse(line));
    return out;
}

// The records of one event (run, step, outer, eval, end), in the order written.
inline std::vector<nlohmann::json> events(const std::string& path, const std::string& event) {
    std::vector<nlohmann::json> out;
    for (auto& r : records(path))
        if (r.at("event") == event) out.push_back(std::move(r));
    return out;
}

// The training loss of every step.
inline std::vector<double> losses(const std::string& path) {
    std::vector<double> out;
    for (const auto& r : events(path, "step")) out.push_back(r.at("loss").get<double>());
    return out;
}

// The last evaluation's record.
inline nlohmann::json last_eval(const std::string& path) {
    const auto evals = events(path, "eval");
    REQUIRE(!evals.empty());
    return evals.back();
}

inline std::vector<float> params(const std::string& dir) { return diloco::load_model(dir).params; }

inline size_t params_count_of_tiny() {
    return diloco::build_layout(diloco::preset_config("tiny", 256)).total;
}

inline std::string corpus(const TempDir& dir) {
    write_text(dir.file("d.txt"), synthetic_text(60000, 11));
    return " --data " + dir.file("d.txt");
}

inline void require_ok(const CliResult& r) {
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    REQUIRE(r.exit_code == 0);
}

// Exactly one line on stderr that names what it should, and a failing exit code.
inline void check_one_line_error(const CliResult& r, const std::string& needle) {
    INFO("stderr: " << r.err);
    CHECK(r.exit_code != 0);
    CHECK(r.err.find(needle) != std::string::npos);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
}

// sum_i (w_i / W) x_i accumulated in double in island order, as the outer sync does.
inline std::vector<float> weighted_mean(const std::vector<std::vector<float>>& xs,
                                        const std::vector<double>& w) {
    double total = 0;
    for (double v : w) total += v;
    std::vector<float> mean(xs[0].size());
    for (size_t j = 0; j < mean.size(); j++) {
        double acc = 0;
        for (size_t i = 0; i < xs.size(); i++) acc += (w[i] / total) * xs[i][j];
        mean[j] = static_cast<float>(acc);
    }
    return mean;
}

// The largest and the mean absolute difference of two parameter vectors of one size.
struct ParamDiff {
    double worst = 0, mean = 0;
};
inline ParamDiff param_diff(const std::vector<float>& a, const std::vector<float>& b) {
    REQUIRE(a.size() == b.size());
    ParamDiff d;
    for (size_t i = 0; i < a.size(); i++) {
        const double x = std::abs(double(a[i]) - double(b[i]));
        d.worst = std::max(d.worst, x);
        d.mean += x / a.size();
    }
    return d;
}

}  // namespace diloco::test::islands
