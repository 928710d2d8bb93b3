// Tests of the simulated WAN link: the delay formula, the time each collective of a WanComm
// takes over a fake 4-rank communicator, no delay on one rank, and option checks.
#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>

#include "comm/solo_comm.h"
#include "comm/wan.h"
#include "util/error.h"

using namespace diloco;

namespace {

// Rank 0 of 4 whose collectives return at once, so that all measured time is the link's.
class FakeComm : public Comm {
public:
    int rank() const override { return 0; }
    int size() const override { return 4; }
    void allreduce_sum(float*, size_t) override {}
    void allreduce_sum(double*, size_t) override {}
    void broadcast(void*, size_t, int) override {}
    void allgatherv(const void*, void*, const std::vector<size_t>&) override {}
    void alltoallv(const void*, const std::vector<size_t>&, void*,
                   const std::vector<size_t>&) override {}
    void barrier() override {}
    std::unique_ptr<Comm> split(int, int) override { return std::make_unique<FakeComm>(); }
    std::string host() const override { return "fake"; }
    NodePlace node_place() override { return {}; }
};

WanComm fake_wan(WanLink link) { return WanComm(std::make_unique<FakeComm>(), link); }

template <class F>
double seconds_taken(F&& f) {
    auto start = std::chrono::steady_clock::now();
    f();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

TEST_CASE("the WAN delay is latency plus bytes over bandwidth", "[wan]") {
    CHECK(wan_delay_seconds({1, 0}, 125'000'000) == Approx(1.0));
    CHECK(wan_delay_seconds({10, 5}, 125'000'000) == Approx(0.005 + 0.1));
    CHECK(wan_delay_seconds({0, 30}, 1'000'000'000) == Approx(0.03));
    CHECK(wan_delay_seconds({2.5, 0}, 0) == 0);
    CHECK(!WanLink{}.active());
    CHECK(WanLink{0, 1}.active());
    CHECK(WanLink{1, 0}.active());
}

TEST_CASE("a WanComm takes the link's time for the bytes a rank sends to the others", "[wan]") {
    const WanLink link{0.8, 20};
    WanComm wan = fake_wan(link);
    // Rank 0 keeps its own 1,000,000 bytes and sends 5,000,000: 20 ms + 50 ms.
    double t = seconds_taken([&] {
        wan.alltoallv(nullptr, {1'000'000, 1'000'000, 1'500'000, 2'500'000}, nullptr,
                      {0, 0, 0, 0});
    });
    double expected = 0.020 + 5'000'000 * 8 / 0.8e9;
    // A busy machine may wake the sleeper late, never early: tight below, loose above.
    CHECK(t >= expected * 0.98);
    CHECK(t < expected + 0.5);
    CHECK(wan.added_seconds() == Approx(expected));
    // Its 2,000,000 bytes go to 3 others: 20 ms + 60 ms.
    t = seconds_taken([&] { wan.allgatherv(nullptr, nullptr, {2'000'000, 1, 1, 1}); });
    double expected2 = 0.020 + 6'000'000 * 8 / 0.8e9;
    CHECK(t >= expected2 * 0.98);
    CHECK(t < expected2 + 0.5);
    CHECK(wan.added_seconds() == Approx(expected + expected2));
}

TEST_CASE("a WanComm counts ring all-reduce, broadcast and barrier bytes", "[wan]") {
    const WanLink link{1000, 0.5};
    WanComm wan = fake_wan(link);
    auto added = [&](auto&& f) {
        double before = wan.added_seconds();
        f();
        return wan.added_seconds() - before;
    };
    // 4 ranks: 2 * 3/4 of the buffer; 1,001 values do not divide evenly and round down.
    CHECK(added([&] { wan.allreduce_sum(static_cast<float*>(nullptr), 1000); }) ==
          Approx(wan_delay_seconds(link, 6000)));
    CHECK(added([&] { wan.allreduce_sum(static_cast<double*>(nullptr), 1001); }) ==
          Approx(wan_delay_seconds(link, 2 * 3 * 8008 / 4)));
    CHECK(added([&] { wan.broadcast(nullptr, 1000, 0); }) == Approx(wan_delay_seconds(link, 3000)));
    CHECK(added([&] { wan.broadcast(nullptr, 1000, 2); }) == Approx(0.0005));
    CHECK(added([&] { wan.barrier(); }) == Approx(0.0005));
    std::unique_ptr<Comm> sub = wan.split(0, 0);
    auto* sub_wan = dynamic_cast<WanComm*>(sub.get());
    REQUIRE(sub_wan != nullptr);
    sub_wan->barrier();
    CHECK(sub_wan->added_seconds() == Approx(0.0005));
}

TEST_CASE("a WanComm of one rank adds no delay", "[wan]") {
    WanComm wan(std::make_unique<SoloComm>(), WanLink{0.001, 1000});
    std::vector<float> x(1000, 1.0f);
    std::vector<size_t> counts = {x.size() * sizeof(float)};
    std::vector<float> y(x.size());
    double t = seconds_taken([&] {
        wan.allreduce_sum(x.data(), x.size());
        wan.allgatherv(x.data(), y.data(), counts);
        wan.alltoallv(x.data(), counts, y.data(), counts);
        wan.broadcast(x.data(), counts[0], 0);
        wan.barrier();
    });
    CHECK(t < 0.5);
    CHECK(wan.added_seconds() == 0);
    CHECK(y == x);
}

TEST_CASE("WAN options must be finite and not negative", "[wan]") {
    CHECK_NOTHROW(validate(WanLink{0, 0}));
    CHECK_NOTHROW(validate(WanLink{2.5, 40}));
    CHECK_THROWS_WITH(validate(WanLink{-1, 0}), Catch::Contains("--wan-gbps"));
    CHECK_THROWS_WITH(validate(WanLink{INFINITY, 0}), Catch::Contains("--wan-gbps"));
    CHECK_THROWS_WITH(validate(WanLink{1, -0.5}), Catch::Contains("--wan-latency-ms"));
    CHECK_THROWS_WITH(validate(WanLink{1, NAN}), Catch::Contains("--wan-latency-ms"));
    CHECK_THROWS_AS(WanComm(std::make_unique<FakeComm>(), WanLink{-1, 0}), Error);
}
