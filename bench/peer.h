// The benches' peers: a Python script of bench/ run by the peers' venv python (scripts/peers.sh),
// its one-line answer read back. Without that python a bench says so and measures only ours.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <sys/wait.h>

#include "util/error.h"

namespace diloco::bench {

// $DILOCO_PEERS_PYTHON, else the build's DILOCO_PEERS_PYTHON; "" when it is not an executable.
inline std::string peers_python() {
    const char* env = std::getenv("DILOCO_PEERS_PYTHON");
    std::string python = env && *env ? env : DILOCO_PEERS_PYTHON;
    return access(python.c_str(), X_OK) == 0 ? python : "";
}

inline std::string shell_quote(const std::string& s) {
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

// Runs bench/SCRIPT ARGS... with the peers' python and returns its standard output; a failure
// is an error naming the script (its own message went to standard error).
inline std::string run_peer_script(const std::string& python, const std::string& script,
                                   const std::string& quoted_args) {
    std::string path = std::string(DILOCO_SOURCE_DIR) + "/bench/" + script;
    std::string command = shell_quote(python) + " " + shell_quote(path) + " " + quoted_args;
    std::FILE* pipe = popen(command.c_str(), "r");
    require(pipe != nullptr, path + ": cannot start " + python);
    std::string out;
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) out.append(buf, n);
    int status = pclose(pipe);
    require(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
            path + ": the peer script failed (exit status " + std::to_string(status) + ")");
    return out;
}

}  // namespace diloco::bench
