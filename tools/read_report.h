// Telling the user what the document readers skipped: each kept "file:line: why" message on
// stderr, then how many more there were. Shared by `diloco prepare` and `diloco tokenizer train`.
#pragma once

#include <cstdio>

#include "data/documents.h"

namespace diloco {

inline void report_malformed(const ReadStats& stats) {
    for (const std::string& m : stats.messages)
        std::fprintf(stderr, "diloco: warning: %s\n", m.c_str());
    if (stats.malformed > stats.messages.size())
        std::fprintf(stderr, "diloco: warning: ... and %llu more malformed lines skipped\n",
                     static_cast<unsigned long long>(stats.malformed - stats.messages.size()));
}

}  // namespace diloco
