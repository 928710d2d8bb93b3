// Helpers for tests that run islands through the CLI: the common small-run flags, metrics
// records, saved parameters, a synthetic corpus, and a success check that prints the output.
#pragma once

#include <catch2/catch.hpp>
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

inline std::vector<double> losses(const std::string& path) {
    std::vector<double> out;
    for (const auto& r : records(path)) out.push_back(r.at("loss").get<double>());
    return out;
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

}  // namespace diloco::test::islands
