// scripts/check_includes.sh --self-test: std::printf without <cstdio>, which libc++'s <string>
// brings and GCC 13's does not.
#pragma once

#include <string>

inline void missing_cstdio_print(const std::string& text) { std::printf("%s\n", text.c_str()); }
