// Wall-clock helpers for the splits that runs report (where an outer step's time goes): the
// seconds since a moment, and a call that adds its own duration to a running total.
#pragma once

#include <chrono>

namespace diloco {

inline double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

template <typename F>
void timed(double& seconds, F f) {
    const auto start = std::chrono::steady_clock::now();
    f();
    seconds += seconds_since(start);
}

}  // namespace diloco
