// TOML configs with [sections]: keys under a section set options by name, exactly as at the top;
// deeper nesting and unknown keys are one-line errors naming the file and the dotted key.
#include <catch2/catch.hpp>

#include "test/helpers.h"
#include "test/island_runs.h"

using diloco::test::CliResult;
using diloco::test::run_diloco;
using diloco::test::TempDir;
using diloco::test::write_text;

namespace {

void check_error(const CliResult& r, const std::string& needle) {
    INFO("stderr: " << r.err);
    CHECK(r.exit_code != 0);
    CHECK(r.err.find(needle) != std::string::npos);
    CHECK(r.err.find('\n') == r.err.size() - 1);  // one line
}

}  // namespace

TEST_CASE("a TOML config with sections trains as the flat one does", "[cli][config]") {
    TempDir dir;
    const std::string data = diloco::test::islands::corpus(dir);
    write_text(dir.file("flat.toml"), "steps = 3\nbatch = 2\nseq = 16\nlr = 2e-3\n"
                                      "eval-every = 0\nval-batches = 1\n");
    write_text(dir.file("sections.toml"), "steps = 3\n[data]\nbatch = 2\nseq = 16\n"
                                          "[optimizer]\nlr = 2e-3\n"
                                          "[output]\neval-every = 0\nval-batches = 1\n");
    for (const char* name : {"flat", "sections"}) {
        CliResult r = run_diloco("train --config " + dir.file(std::string(name) + ".toml") + data +
                                 " --log " + dir.file(std::string(name) + ".jsonl"));
        diloco::test::islands::require_ok(r);
    }
    CHECK(diloco::test::islands::losses(dir.file("flat.jsonl")) ==
          diloco::test::islands::losses(dir.file("sections.jsonl")));
}

TEST_CASE("bad sections in a TOML config are one-line errors", "[cli][config]") {
    TempDir dir;
    write_text(dir.file("typo.toml"), "[diloco]\nstesp = 3\n");
    check_error(run_diloco("train --config " + dir.file("typo.toml")),
                dir.file("typo.toml") + ": unknown option 'diloco.stesp'");
    write_text(dir.file("codec.toml"), "[outer]\nouter-codec = \"int9\"\n");
    check_error(run_diloco("train --config " + dir.file("codec.toml")),
                dir.file("codec.toml") + ": --outer-codec: int9 not in {fp32,");
    write_text(dir.file("deep.toml"), "[a.b]\nsteps = 3\n");
    check_error(run_diloco("train --config " + dir.file("deep.toml")),
                dir.file("deep.toml") + ": 'a.b.steps': sections nest one level");
}
