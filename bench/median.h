// The benches' timing: the median wall time of repeated calls, which one slow call (a page
// fault storm, a neighbour's burst) does not move.
#pragma once

#include <algorithm>
#include <chrono>
#include <vector>

namespace diloco::bench {

// Median seconds of `reps` calls of f.
template <class F>
double median_seconds(int reps, F f) {
    std::vector<double> times;
    for (int rep = 0; rep < reps; rep++) {
        const auto start = std::chrono::steady_clock::now();
        f();
        const auto stop = std::chrono::steady_clock::now();
        times.push_back(std::chrono::duration<double>(stop - start).count());
    }
    std::sort(times.begin(), times.end());
    return times[reps / 2];
}

}  // namespace diloco::bench
