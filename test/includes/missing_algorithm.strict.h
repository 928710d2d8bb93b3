// scripts/check_includes.sh --self-test: std::sort without <algorithm>, which GCC 12's <vector>
// reaches and GCC 14's does not; caught where libc++ (15+) removes its transitive includes.
#pragma once

#include <vector>

inline void missing_algorithm_sort(std::vector<int>& values) {
    std::sort(values.begin(), values.end());
}
