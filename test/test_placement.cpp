// Which GPU each rank takes: its index among the GPU ranks on its machine (never its index inside
// its island; CPU ranks take none), as a table over island counts and machines, the launcher's
// variables, and mpirun.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <map>
#include <set>

#include "comm/topology.h"
#include "test/helpers.h"
#include "test/island_runs.h"
#include "test/thread_comm.h"
#include "util/error.h"

using namespace diloco;

namespace {

// What MPI_COMM_TYPE_SHARED gives: each rank's index among the ranks on its host.
std::vector<NodePlace> places_on_hosts(const std::vector<std::string>& host_of_rank) {
    std::map<std::string, int> count;
    for (const std::string& h : host_of_rank) count[h]++;
    std::map<std::string, int> seen;
    std::vector<NodePlace> places;
    for (const std::string& h : host_of_rank) places.push_back({seen[h]++, count[h]});
    return places;
}

// Ranks placed by slot (filling a machine first) or by node (round robin), 8 GPUs each.
std::vector<std::string> hosts(int machines, int ranks_per_machine, bool by_slot) {
    std::vector<std::string> h;
    for (int r = 0; r < machines * ranks_per_machine; r++)
        h.push_back("node" + std::to_string(by_slot ? r / ranks_per_machine : r % machines));
    return h;
}

void clear_launcher_env() {
    for (const char* v : {"OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE",
                          "SLURM_LOCALID", "SLURM_TASKS_PER_NODE", "SLURM_NODEID"})
        unsetenv(v);
}

}  // namespace

TEST_CASE("every rank of a machine gets its own GPU, whatever the islands", "[placement]") {
    const int gpus = 8;
    for (int machines : {1, 2}) {
        for (bool by_slot : {true, false}) {
            const std::vector<std::string> host_of_rank = hosts(machines, gpus, by_slot);
            const int world = static_cast<int>(host_of_rank.size());
            const std::vector<NodePlace> places = places_on_hosts(host_of_rank);
            for (int islands : {1, 4, 8}) {
                const std::vector<int> island_of_rank =
                    assign_islands(world, std::to_string(islands), "", host_of_rank);
                std::map<std::string, std::set<int>> used;
                std::set<int> island_local_gpus;
                for (int r = 0; r < world; r++) {
                    const int gpu = gpu_for_rank(places[r], gpus, false);
                    INFO(machines << " machine(s), islands " << islands << ", rank " << r);
                    CHECK(used[host_of_rank[r]].insert(gpu).second);  // no GPU taken twice
                    island_local_gpus.insert(make_topology(r, island_of_rank).local_rank % gpus);
                }
                for (const auto& [host, gpu_set] : used) CHECK(gpu_set.size() == size_t(gpus));
                // The old choice (island-local rank) left GPUs idle as soon as islands > 1.
                if (islands > 1) CHECK(island_local_gpus.size() < size_t(gpus));
            }
        }
    }
}

TEST_CASE("more ranks than GPUs on a machine is refused unless shared", "[placement]") {
    CHECK(gpu_for_rank({3, 4}, 4, false) == 3);
    CHECK_THROWS_WITH(gpu_for_rank({0, 9}, 8, false),
                      Catch::Contains("9 ranks on this machine but 8 GPUs") &&
                          Catch::Contains("--share-gpus"));
    CHECK(gpu_for_rank({8, 9}, 8, true) == 0);
    CHECK(gpu_for_rank({5, 9}, 8, true) == 5);
    CHECK_THROWS_WITH(gpu_for_rank({0, 1}, 0, true), Catch::Contains("no CUDA device"));
}

TEST_CASE("CPU ranks take no GPU: a GPU rank's place counts only the GPU ranks",
          "[placement]") {
    // One machine: ranks 0 and 2 on GPUs, 1 and 3 on the CPU (islands cuda,cpu,cuda,cpu).
    std::vector<NodePlace> places(4);
    diloco::test::run_ranks(4, [&](Comm& world) {
        places[world.rank()] = gpu_place(world, world.rank() % 2 == 0);
    });
    CHECK((places[0].rank == 0 && places[0].size == 2));
    CHECK((places[2].rank == 1 && places[2].size == 2));
    CHECK((places[1].rank == 0 && places[1].size == 2));  // among the CPU ranks: unused
    CHECK((places[3].rank == 1 && places[3].size == 2));
    // Two GPUs hold the two GPU ranks without --share-gpus; the machine's 4 ranks would not.
    CHECK(gpu_for_rank(places[0], 2, false) == 0);
    CHECK(gpu_for_rank(places[2], 2, false) == 1);
    CHECK_THROWS_WITH(gpu_for_rank({2, 4}, 2, false), Catch::Contains("4 ranks on this machine"));
    // mpirun -np 2 ... --island-devices cuda,cpu: one GPU is enough.
    std::vector<NodePlace> pair(2);
    diloco::test::run_ranks(2, [&](Comm& world) {
        pair[world.rank()] = gpu_place(world, world.rank() == 0);
    });
    CHECK(gpu_for_rank(pair[0], 1, false) == 0);
}

TEST_CASE("the launcher's variables place a process without MPI", "[placement]") {
    clear_launcher_env();
    NodePlace alone = launcher_node_place();
    CHECK((alone.rank == 0 && alone.size == 1));

    setenv("OMPI_COMM_WORLD_LOCAL_RANK", "3", 1);
    setenv("OMPI_COMM_WORLD_LOCAL_SIZE", "4", 1);
    NodePlace ompi = launcher_node_place();
    CHECK((ompi.rank == 3 && ompi.size == 4));
    setenv("OMPI_COMM_WORLD_LOCAL_RANK", "x", 1);
    CHECK_THROWS_WITH(launcher_node_place(), Catch::Contains("OMPI_COMM_WORLD_LOCAL_RANK='x'"));

    clear_launcher_env();
    setenv("SLURM_LOCALID", "1", 1);
    setenv("SLURM_TASKS_PER_NODE", "2(x3),1", 1);
    setenv("SLURM_NODEID", "2", 1);
    NodePlace slurm = launcher_node_place();
    CHECK((slurm.rank == 1 && slurm.size == 2));
    setenv("SLURM_NODEID", "3", 1);  // the fourth node runs one task: local id 1 cannot be
    CHECK_THROWS_WITH(launcher_node_place(), Catch::Contains("local rank 1 of 1"));
    setenv("SLURM_NODEID", "4", 1);
    CHECK_THROWS_WITH(launcher_node_place(), Catch::Contains("lists 4 nodes, SLURM_NODEID is 4"));
    setenv("SLURM_TASKS_PER_NODE", "2(x", 1);
    CHECK_THROWS_WITH(launcher_node_place(), Catch::Contains("'2(x' is not N or N(xM)"));
    clear_launcher_env();
}

TEST_CASE("under mpirun each rank prints its machine rank, island and device", "[placement]") {
    using namespace diloco::test;
    TempDir dir;
    CliResult r = run_mpi(4, "train --mode diloco --islands 4 --steps 2 --inner-steps 2 "
                             "--device cpu" + islands::corpus(dir) + islands::kRun);
    islands::require_ok(r);
    for (int rank = 0; rank < 4; rank++) {
        const std::string line = "rank " + std::to_string(rank) + " on ";
        const std::string place = "(rank " + std::to_string(rank) + " of 4 on the machine): island " +
                                  std::to_string(rank) + " (rank 0 of 1 in it), cpu";
        INFO(r.out);
        CHECK(r.out.find(line) != std::string::npos);
        CHECK(r.out.find(place) != std::string::npos);
    }
}

TEST_CASE("CUDA-only device options are refused on the CPU with one line", "[placement]") {
    using namespace diloco::test;
    TempDir dir;
    CliResult r = run_diloco("train --device cpu --attention flash --steps 1" +
                             islands::corpus(dir) + islands::kRun);
    CHECK(r.exit_code != 0);
    CHECK(r.err == "diloco: error: --attention flash needs --device cuda: the CPU has one "
                   "attention\n");
    CliResult fast = run_diloco("train --device cpu --attention fast --steps 1" +
                                islands::corpus(dir));
    CHECK(fast.exit_code != 0);
    CHECK(fast.err.find("--attention: fast not in {cudnn,flash,plain}") != std::string::npos);
    CliResult timeout = run_diloco("train --device cpu --island-timeout 0 --steps 1" +
                                   islands::corpus(dir));
    CHECK(timeout.exit_code != 0);
    CHECK(timeout.err.find("--island-timeout: '0' is not a finite number within (0, 604800]") !=
          std::string::npos);
}
