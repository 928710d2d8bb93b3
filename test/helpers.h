// Shared helpers for tests: temporary directories, running the `diloco` binary and capturing
// its exit code and output, and small synthetic corpora that need no shared data.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace diloco::test {

// A fresh empty directory under the system temp dir, removed when the object dies.
class TempDir {
public:
    TempDir();
    ~TempDir();
    const std::string& path() const { return path_; }
    std::string file(const std::string& name) const { return path_ + "/" + name; }

private:
    std::string path_;
};

struct CliResult {
    int exit_code;
    std::string out, err;
};
// Runs a shell command line, capturing its exit code, standard output and standard error.
CliResult run_command(const std::string& command, const std::string& stdin_path = "/dev/null");
// Runs the diloco binary with the given argument string (shell-quoted by the caller), its
// standard input read from the file stdin_path.
CliResult run_diloco(const std::string& args, const std::string& stdin_path = "/dev/null");
// Skips the test where this build has no MPI or mpirun is not on the PATH.
void require_mpirun();
// Runs it under `mpirun -np ranks --oversubscribe` with one OpenMP thread per rank, killed
// after two minutes so that a hang fails the test; skips the test when mpirun is absent.
CliResult run_mpi(int ranks, const std::string& args);
// The same with another MPI's mpirun and a binary built against it (Open MPI 5: test_mpi5.cpp).
CliResult run_mpi_with(const std::string& mpirun, const std::string& binary, int ranks,
                       const std::string& args);

// Starts `sh -c command` in a process group of its own (mpirun and its local ranks with it).
int start_process(const std::string& command);
// Waits until `needle` appears in file, or process pid ends (false then).
bool wait_for_text(const std::string& file, const std::string& needle, int pid);

// Deterministic English-like text of about `bytes` bytes.
std::string synthetic_text(size_t bytes, uint64_t seed);
void write_text(const std::string& path, const std::string& text);
std::string read_text(const std::string& path);

}  // namespace diloco::test
