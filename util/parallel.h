// When a loop over values is worth OpenMP's threads: below this many values, starting them costs
// more than they save. One threshold for the codecs, the outer optimizer and the outer step.
#pragma once

#include <cstddef>

namespace diloco {

inline constexpr size_t kParallelMin = size_t(1) << 16;

}  // namespace diloco
