// scripts/check_includes.sh --self-test: uint64_t without <cstdint>, which libc++'s <string>
// brings and GCC 13's does not.
#pragma once

#include <string>

inline uint64_t missing_cstdint_length(const std::string& text) { return text.size(); }
