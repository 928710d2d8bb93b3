// Unit tests of the pieces of DiLoCo that need no MPI: the outer optimizers against hand
// computations, island assignment, island presence, and the byte formula of the outer sync.
#include <catch2/catch.hpp>

#include "comm/outer_sync.h"
#include "comm/topology.h"
#include "optim/island_schedule.h"
#include "optim/outer.h"
#include "util/error.h"

using namespace diloco;

TEST_CASE("Nesterov outer step matches a hand computation over two steps", "[outer]") {
    OuterOptimizer opt({OuterOpt::nesterov, 0.7f, 0.9f, 0.999f, 1e-8f}, 2);
    std::vector<float> global = {1.0f, -2.0f};
    // Step 1: islands' mean moved to (0.8, -1.5): delta = (0.2, -0.5), m = delta,
    // update = 0.7 * (delta + 0.9 m) = 0.7 * 1.9 * delta.
    std::vector<float> mean = {0.8f, -1.5f};
    opt.step_to_mean(global.data(), mean.data(), {0, 2, 1});
    CHECK(global[0] == Approx(1.0 - 0.7 * 1.9 * 0.2).epsilon(1e-6));
    CHECK(global[1] == Approx(-2.0 + 0.7 * 1.9 * 0.5).epsilon(1e-6));
    const double g0 = global[0], g1 = global[1];
    // Step 2: mean = global - (0.1, 0.1): delta = 0.1, m = 0.9 m1 + 0.1.
    mean = {float(g0 - 0.1), float(g1 - 0.1)};
    opt.step_to_mean(global.data(), mean.data(), {0, 2, 2});
    const double m0 = 0.9 * 0.2 + 0.1, m1 = 0.9 * -0.5 + 0.1;
    CHECK(global[0] == Approx(g0 - 0.7 * (0.1 + 0.9 * m0)).epsilon(1e-6));
    CHECK(global[1] == Approx(g1 - 0.7 * (0.1 + 0.9 * m1)).epsilon(1e-6));
    CHECK(opt.moment1()[0] == Approx(m0).epsilon(1e-6));
}

TEST_CASE("SGD and Adam outer steps: lr 1, momentum 0 is exactly the mean", "[outer]") {
    std::vector<float> global = {1.0f, 3e-8f, -7.25f}, mean = {0.999f, 0.5f, -7.0f};
    OuterOptimizer fedavg({OuterOpt::sgd, 1.0f, 0.0f, 0.999f, 1e-8f}, 3);
    std::vector<float> g = global;
    fedavg.step_to_mean(g.data(), mean.data(), {0, 3, 1});
    CHECK(g == mean);  // bitwise, although global - (global - mean) rounds differently in fp32
    OuterOptimizer nesterov({OuterOpt::nesterov, 1.0f, 0.0f, 0.999f, 1e-8f}, 3);
    g = global;
    nesterov.step_to_mean(g.data(), mean.data(), {0, 3, 1});
    CHECK(g == mean);

    OuterOptimizer adam({OuterOpt::adam, 0.1f, 0.9f, 0.99f, 1e-8f}, 3);
    g = global;
    adam.step_to_mean(g.data(), mean.data(), {0, 3, 1});
    // First Adam step: mhat = delta, vhat = delta^2, update = lr * sign(delta).
    CHECK(g[0] == Approx(1.0 - 0.1).epsilon(1e-5));  // eps is 1e-5 of |delta| = 1e-3
    CHECK(g[2] == Approx(-7.25 + 0.1).epsilon(1e-6));
    CHECK_THROWS_WITH(OuterOptimizer({OuterOpt::adam, 0.1f, 0.9f, 1.0f, 1e-8f}, 1),
                      Catch::Contains("--outer-beta2 must be in [0, 1)"));
}

TEST_CASE("islands from counts, sizes and hosts", "[outer]") {
    CHECK(assign_islands(4, "2", "", {}) == std::vector<int>{0, 0, 1, 1});
    CHECK(assign_islands(4, "1", "2,1,1", {}) == std::vector<int>{0, 0, 1, 2});
    CHECK(assign_islands(4, "host", "", {"a", "b", "a", "b"}) == std::vector<int>{0, 1, 0, 1});
    CHECK_THROWS_WITH(assign_islands(4, "3", "", {}), Catch::Contains("does not divide"));
    CHECK_THROWS_WITH(assign_islands(4, "1", "2,1", {}), Catch::Contains("sums to 3"));
    CHECK_THROWS_WITH(assign_islands(4, "1", "2,x", {}), Catch::Contains("'x'"));
    CHECK_THROWS_WITH(assign_islands(4, "many", "", {}), Catch::Contains("--islands 'many'"));
    Topology t = make_topology(2, {0, 0, 1, 2});
    CHECK((t.island == 1 && t.local_rank == 0 && t.local_size == 1 && t.islands == 3));
    CHECK_FALSE(t.uniform());
    CHECK(make_topology(3, {0, 0, 1, 1}).local_rank == 1);
    CHECK(t.island_ids == std::vector<int>{0, 1, 2});
    t.island_ids = parse_island_ids("4,0,2", 3);
    CHECK((t.island_id() == 0 && t.id_count() == 5));
}

TEST_CASE("island ids: one distinct id per island, or the islands' indices", "[outer]") {
    CHECK(parse_island_ids("", 3) == std::vector<int>{0, 1, 2});
    CHECK(parse_island_ids("0,2", 2) == std::vector<int>{0, 2});
    struct Bad {
        const char* ids;
        int islands;
        const char* message;
    };
    const Bad bad[] = {
        {"0,2,3", 2, "3 ids for 2 islands"},  {"1,1", 2, "id 1 is given twice"},
        {"0,-1", 2, "'-1' is not an id"},      {"0,,1", 3, "'' is not an id"},
        {"0,x", 2, "'x' is not an id"},        {"0,4096", 2, "'4096' is not an id from 0 to 4095"},
    };
    for (const auto& [ids, islands, message] : bad) {
        INFO(ids);
        CHECK_THROWS_WITH(parse_island_ids(ids, islands),
                          Catch::Contains("--island-ids '" + std::string(ids) + "'") &&
                              Catch::Contains(message));
    }
}

TEST_CASE("island presence follows the schedule, then seeded drop-out", "[outer]") {
    IslandSchedule schedule("1-2:0+1,5-5:3", 4, 0, 1337);
    CHECK(schedule.present(1) == std::vector<bool>{true, true, false, false});
    CHECK(schedule.present(3) == std::vector<bool>{true, true, true, true});
    CHECK(schedule.present(5) == std::vector<bool>{false, false, false, true});
    CHECK_THROWS_WITH(IslandSchedule("1-2:7", 4, 0, 1337), Catch::Contains("island 7"));
    CHECK_NOTHROW(IslandSchedule("1-2:7", 0, 0, 1337));  // the syntax alone
    CHECK_THROWS_WITH(IslandSchedule("2-1:0", 0, 0, 1337), Catch::Contains("1 <= FROM <= TO"));
    CHECK_THROWS_WITH(IslandSchedule("1:0", 0, 0, 1337), Catch::Contains("FROM-TO:"));
    const IslandSchedule dropping("", 4, 0.5, 1337);
    int absent = 0;
    for (int step = 1; step <= 100; step++) {
        std::vector<bool> p = dropping.present(step);
        CHECK(p == IslandSchedule("", 4, 0.5, 1337).present(step));  // seed and step alone
        for (bool x : p) absent += !x;
    }
    CHECK(absent > 150);
    CHECK(absent < 250);
}

TEST_CASE("outer sync bytes follow the ring all-reduce volume", "[outer]") {
    // 2 (k - 1) / k of the vector per island, plus 16 bytes of note per peer and shard.
    CHECK(island_bytes_sent(1200, 4, 1, 0) == 2 * 900 * 4 + 3 * 16);
    CHECK(island_bytes_sent(1200, 4, 3, 2) == 2 * 900 * 4 + 3 * 3 * 16);
    CHECK(island_bytes_sent(1000, 1, 1, 0) == 0);
}
