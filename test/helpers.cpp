// Shared helpers for tests: temporary directories, running the binary, synthetic corpora.
// The binary's path comes from CMake (DILOCO_BINARY) so tests exercise what users run.
#include "test/helpers.h"

#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "test/skip.h"
#include "util/rng.h"

namespace diloco::test {

TempDir::TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "diloco-test-XXXXXX").string();
    std::vector<char> buf(pattern.begin(), pattern.end());
    buf.push_back('\0');
    if (!mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed");
    path_ = buf.data();
}

TempDir::~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
}

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

void write_text(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary);
    out << text;
}

CliResult run_command(const std::string& command, const std::string& stdin_path) {
    TempDir io;
    std::string cmd = command + " >" + io.file("out") + " 2>" + io.file("err") + " <" + stdin_path;
    int status = std::system(cmd.c_str());
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return {code, read_text(io.file("out")), read_text(io.file("err"))};
}

CliResult run_diloco(const std::string& args, const std::string& stdin_path) {
    return run_command(std::string(DILOCO_BINARY) + " " + args, stdin_path);
}

void require_mpirun() {
#ifndef DILOCO_HAVE_MPI
    skip_test("this build has no MPI");
#endif
    if (std::system("command -v mpirun >/dev/null 2>&1") != 0) skip_test("mpirun not found");
}

CliResult run_mpi(int ranks, const std::string& args) {
    require_mpirun();
    return run_mpi_with("mpirun", DILOCO_BINARY, ranks, args);
}

CliResult run_mpi_with(const std::string& mpirun, const std::string& binary, int ranks,
                       const std::string& args) {
    // CI runs as root, which OpenMPI refuses unless told twice.
    std::string env = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
                      "OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 ";
    return run_command(env + "timeout -k 5 120 " + mpirun + " -np " + std::to_string(ranks) +
                       " --oversubscribe " + binary + " " + args);
}

int start_process(const std::string& command) {
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        setpgid(0, 0);
        execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
        _exit(127);
    }
    setpgid(pid, pid);
    return pid;
}

bool wait_for_text(const std::string& file, const std::string& needle, int pid) {
    for (;;) {
        if (std::filesystem::exists(file) && read_text(file).find(needle) != std::string::npos)
            return true;
        int status = 0;
        if (waitpid(pid, &status, WNOHANG) == pid) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
}

std::string synthetic_text(size_t bytes, uint64_t seed) {
    static const char* words[] = {"the",   "island", "model", "learns", "slowly", "and",
                                  "then",  "every",  "outer", "step",   "brings", "news",
                                  "from",  "far",    "away",  "to",     "all",    "of",
                                  "them,", "while",  "inner", "steps",  "hum.",   "A"};
    Rng rng(seed, 0);
    std::string text;
    while (text.size() < bytes) {
        text += words[rng.below(sizeof(words) / sizeof(words[0]))];
        text += rng.below(12) == 0 ? "\n" : " ";
    }
    return text;
}

}  // namespace diloco::test
