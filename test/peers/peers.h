// Running a peer (torch, transformers, tiktoken) from a test: the python of the venv that
// scripts/peers.sh makes, found at DILOCO_PEERS_PYTHON; tests skip (77) when it is absent.
#pragma once

#include <filesystem>
#include <string>

#include "test/helpers.h"
#include "test/skip.h"

namespace diloco::test {

// The peers' python; skips the test when it is absent (call it first, before costly work).
inline std::string peers_python() {
    const std::string python = DILOCO_PEERS_PYTHON;
    if (!std::filesystem::exists(python))
        skip_test(python + " is absent (make it with scripts/peers.sh)");
    return python;
}

// Runs the script at `path` (from the repository's root) with the peers' python and the given
// (shell-quoted) arguments.
inline CliResult run_peer(const std::string& path, const std::string& args) {
    return run_command(peers_python() + " " + DILOCO_SOURCE_DIR + "/" + path + " " + args);
}

// Runs test/peers/SCRIPT the same way.
inline CliResult run_peer_script(const std::string& script, const std::string& args) {
    return run_peer("test/peers/" + script, args);
}

}  // namespace diloco::test
