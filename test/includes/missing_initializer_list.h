// scripts/check_includes.sh --self-test: a range-for over a braced list without
// <initializer_list>, which GCC 14's <atomic> no longer brings (util/stop_signal.cpp, issue 20).
#pragma once

#include <atomic>

inline int missing_initializer_list_sum() {
    int sum = 0;
    for (int v : {1, 2}) sum += v;
    return sum;
}
