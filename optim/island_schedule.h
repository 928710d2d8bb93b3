// Which islands take part in each outer step: `--island-schedule` ranges, parsed once, then
// seeded drop-out (`--drop-prob`), a pure function of the seed, the island and the outer step.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace diloco {

class IslandSchedule {
public:
    // spec: "FROM-TO:I+J+...,..." (outer steps, 1-based and inclusive; steps no range names
    // take every island). Errors name the option and the item; islands: the run's count (an
    // island the schedule names must exist), 0 to check the syntax alone.
    IslandSchedule(const std::string& spec, int islands, double drop_prob, uint64_t seed);

    // Island i takes part in outer step `outer_step` (1-based) when element i is true.
    std::vector<bool> present(int outer_step) const;

private:
    struct Range {
        int from, to;
        std::vector<int> islands;
    };
    std::vector<Range> ranges_;
    int islands_;
    double drop_prob_;
    uint64_t seed_;
};

}  // namespace diloco
