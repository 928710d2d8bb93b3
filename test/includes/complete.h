// scripts/check_includes.sh --self-test: a header that includes all it uses, which must pass
// (beside the missing_*.h that must fail).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <vector>

inline uint64_t complete_sum() {
    std::vector<uint64_t> values;
    for (uint64_t v : {3, 1, 2}) values.push_back(v);
    std::sort(values.begin(), values.end());
    std::printf("%d\n", static_cast<int>(values.size()));
    return values.front();
}
