// Tests of the outer sync between islands run as threads: the compressed weighted mean against
// the exact one within the codecs' bounds, identical results everywhere, byte counters against
// the size formula, error feedback across rounds, non-finite outer gradients refused, buffers
// kept across syncs, and the fingerprint that shows ranks agree.
#include <catch2/catch.hpp>
#include <omp.h>

#include <cmath>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "comm/outer_sync.h"
#include "test/thread_comm.h"
#include "util/checksum.h"
#include "util/error.h"
#include "util/rng.h"

using namespace diloco;

namespace {

// Island i's vector: heavy-tailed values, different on every island.
std::vector<float> island_vector(int island, size_t n) {
    Rng rng(77 + island, 5);
    std::vector<float> x(n);
    for (float& v : x) v = float(rng.normal() * std::exp(rng.normal()));
    return x;
}

struct Range {
    size_t begin, end;
};
Range part(size_t n, int i, int parts) { return {n * i / parts, n * (i + 1) / parts}; }

// The sub-slice holding element j when n values are sharded over `shards` ranks per island and
// each shard over k owners: the unit that is encoded on its own.
Range unit_of(size_t n, int shards, int k, size_t j) {
    for (int r = 0; r < shards; r++) {
        const Range slice = part(n, r, shards);
        for (int o = 0; o < k && j >= slice.begin && j < slice.end; o++) {
            const Range sub = part(slice.end - slice.begin, o, k);
            if (j < slice.begin + sub.end) return {slice.begin + sub.begin, slice.begin + sub.end};
        }
    }
    return {0, 0};
}

// Bound on |decoded mean - exact mean| at each element: each island's encoding error, weighted,
// plus the owner's encoding of the reduced value R (bounded from R itself, rebuilt here from
// the islands' round trips), plus fp32 rounding of R and of the exact mean.
std::vector<double> mean_bounds(Codec codec, const std::vector<std::vector<float>>& xs,
                                int shards) {
    const size_t n = xs[0].size();
    const int k = static_cast<int>(xs.size());
    std::vector<double> bound(n, 0.0);
    std::vector<float> reduced(n);
    for (size_t j = 0; j < n;) {
        const Range u = unit_of(n, shards, k, j);
        const size_t len = u.end - u.begin;
        std::vector<double> acc(len, 0.0);
        for (const auto& x : xs) {
            std::vector<uint8_t> bytes(encoded_bytes(codec, len));
            std::vector<float> back(len);
            encode(codec, x.data() + u.begin, len, bytes.data());
            decode(codec, bytes.data(), len, back.data());
            for (size_t t = 0; t < len; t++) {
                acc[t] += back[t] / double(k);
                bound[u.begin + t] += error_bound(codec, x.data() + u.begin, len, t) / k;
            }
        }
        for (size_t t = 0; t < len; t++) reduced[u.begin + t] = float(acc[t]);
        for (size_t t = 0; t < len; t++)
            bound[u.begin + t] += error_bound(codec, reduced.data() + u.begin, len, t) +
                                  std::fabs(acc[t]) * 2.4e-7;
        j = u.end;
    }
    return bound;
}

struct SyncResult {
    std::vector<std::vector<float>> means;  // by world rank
    std::vector<uint64_t> bytes_sent;       // by world rank
    std::vector<double> totals;
};

// Runs one weighted mean of island_vector(island) over islands of the given sizes.
SyncResult sync_once(const std::string& sizes, int ranks, Codec codec, size_t n,
                     bool feedback = false) {
    SyncResult out;
    out.means.resize(ranks);
    out.bytes_sent.resize(ranks);
    out.totals.resize(ranks);
    test::run_ranks(ranks, [&](Comm& world) {
        IslandComms comms = connect_islands(world, "1", sizes);
        OuterSync sync(comms);
        std::vector<float> x = island_vector(comms.topology.island, n);
        std::vector<float> residual(feedback ? n : 0, 0.0f);
        std::vector<IslandNote> notes;
        SyncStats stats;
        const double total =
            sync.weighted_mean(x.data(), n, {1.0, double(comms.topology.island)}, notes, stats,
                               {codec, feedback ? residual.data() : nullptr});
        out.means[world.rank()] = x;
        out.bytes_sent[world.rank()] = stats.bytes_sent;
        out.totals[world.rank()] = total;
        require(notes.size() == size_t(comms.topology.islands) &&
                    notes.back().loss == comms.topology.islands - 1,
                "notes did not arrive");
    });
    return out;
}

std::vector<float> exact_mean(int k, size_t n) {
    std::vector<float> mean(n);
    for (size_t j = 0; j < n; j++) {
        double acc = 0;
        for (int i = 0; i < k; i++) acc += (1.0 / k) * island_vector(i, n)[j];
        mean[j] = float(acc);
    }
    return mean;
}

}  // namespace

TEST_CASE("compressed outer mean stays within the codec bounds of the exact mean", "[sync]") {
    const size_t n = 1000;
    // Three islands of one rank; two of two ranks (sharded); unequal islands (leaders).
    const struct {
        const char* sizes;
        int ranks, islands, shards;
    } layouts[] = {{"1,1,1", 3, 3, 1}, {"2,2", 4, 2, 2}, {"2,1", 3, 2, 1}};
    for (const auto& layout : layouts) {
        std::vector<std::vector<float>> xs;
        for (int i = 0; i < layout.islands; i++) xs.push_back(island_vector(i, n));
        const std::vector<float> exact = exact_mean(layout.islands, n);
        for (Codec codec : kCodecs) {
            SyncResult r = sync_once(layout.sizes, layout.ranks, codec, n);
            for (int rank = 1; rank < layout.ranks; rank++) CHECK(r.means[rank] == r.means[0]);
            const std::vector<double> bound = mean_bounds(codec, xs, layout.shards);
            size_t bad = 0;
            for (size_t j = 0; j < n; j++)
                bad += !(std::fabs(double(r.means[0][j]) - exact[j]) <= bound[j]);
            INFO(codec_name(codec) << " on islands " << layout.sizes);
            CHECK(bad == 0);
            if (codec == Codec::fp32) CHECK(r.means[0] == exact);
            CHECK(r.totals[0] == layout.islands);
        }
    }
}

TEST_CASE("bytes sent across islands equal the codec's size formula", "[sync]") {
    const size_t n = 1003;
    for (Codec codec : kCodecs) {
        SyncResult r = sync_once("1,1,1,1", 4, codec, n);
        for (int island = 0; island < 4; island++)
            CHECK(r.bytes_sent[island] == island_bytes_sent(n, 4, 1, island, codec));
        SyncResult sharded = sync_once("2,2", 4, codec, n);
        uint64_t island0 = sharded.bytes_sent[0] + sharded.bytes_sent[1];
        CHECK(island0 == island_bytes_sent(n, 2, 2, 0, codec));
    }
    // 4-bit sends 0.504 bytes per value where fp32 sends 4.
    const double ratio = double(island_bytes_sent(1 << 20, 4, 1, 0, Codec::fp32)) /
                         double(island_bytes_sent(1 << 20, 4, 1, 0, Codec::int4));
    CHECK(ratio == Approx(4.0 / (0.5 + 4.0 / kCodecBlock)).epsilon(1e-3));
}

// Two islands send the same vectors round after round; returns the largest gap between the
// sum of what arrived and the sum of what was sent.
double drift_over_rounds(bool feedback) {
    const size_t n = 1000;
    const int rounds = 50;
    std::vector<double> arrived(n, 0.0), sent(n, 0.0);
    test::run_ranks(2, [&](Comm& world) {
        IslandComms comms = connect_islands(world, "2", "");
        OuterSync sync(comms);
        std::vector<float> residual(n, 0.0f), owner_residual(n, 0.0f);
        for (int round = 0; round < rounds; round++) {
            Rng rng(round, 9);
            std::vector<float> x(n);
            for (float& v : x) v = float(rng.normal());
            std::vector<IslandNote> notes;
            SyncStats stats;
            if (world.rank() == 0)
                for (size_t j = 0; j < n; j++) sent[j] += x[j];
            sync.weighted_mean(x.data(), n, {1.0, 0.0}, notes, stats,
                               {Codec::int4, feedback ? residual.data() : nullptr,
                                feedback ? owner_residual.data() : nullptr});
            if (world.rank() == 0)
                for (size_t j = 0; j < n; j++) arrived[j] += x[j];
        }
    });
    double worst = 0;
    for (size_t j = 0; j < n; j++) worst = std::max(worst, std::fabs(arrived[j] - sent[j]));
    return worst;
}

TEST_CASE("error feedback carries the codec's loss into the next round", "[sync]") {
    // Without feedback the int4 errors of 50 rounds add up like a random walk (about 7 rounds'
    // worth); with it (on the islands' encoding and the owners') only the last round's remain.
    const double with = drift_over_rounds(true), without = drift_over_rounds(false);
    INFO("drift with feedback " << with << ", without " << without);
    CHECK(with < 0.4 * without);
}

TEST_CASE("a non-finite outer gradient is refused, naming the island", "[sync]") {
    std::vector<std::string> messages(2);
    test::run_ranks(2, [&](Comm& world) {
        IslandComms comms = connect_islands(world, "2", "");
        OuterSync sync(comms);
        std::vector<float> x(10, 1.0f);
        x[3 + world.rank()] = world.rank() == 0 ? NAN : -INFINITY;  // both fail before sending
        std::vector<IslandNote> notes;
        SyncStats stats;
        try {
            sync.weighted_mean(x.data(), x.size(), {1.0, 0.0}, notes, stats, {Codec::int8});
        } catch (const Error& e) {
            messages[world.rank()] = e.what();
        }
    });
    CHECK_THAT(messages[0], Catch::Contains("island 0") && Catch::Contains("nan") &&
                                Catch::Contains("index 3"));
    CHECK_THAT(messages[1], Catch::Contains("island 1") && Catch::Contains("-inf") &&
                                Catch::Contains("index 4"));
}

TEST_CASE("one OuterSync kept across syncs of other sizes, codecs and islands absent gives a "
          "fresh one's bits", "[sync]") {
    struct Round {
        size_t n;
        Codec codec;
        bool island1_absent;
    };
    const std::vector<Round> rounds = {{5000, Codec::fp32, false},
                                       {70000, Codec::int4, false},
                                       {3000, Codec::fp32, true},
                                       {70000, Codec::bf16, true},
                                       {5000, Codec::fp32, false}};
    auto run = [&](bool fresh) {
        std::vector<std::vector<float>> results(rounds.size());
        test::run_ranks(4, [&](Comm& world) {
            IslandComms comms = connect_islands(world, "2", "");
            auto kept = std::make_unique<OuterSync>(comms);
            for (size_t r = 0; r < rounds.size(); r++) {
                if (fresh) kept = std::make_unique<OuterSync>(comms);
                const int island = comms.topology.island;
                std::vector<float> x = island_vector(island + int(r), rounds[r].n);
                const double weight = rounds[r].island1_absent && island == 1 ? 0.0 : 1.0;
                std::vector<IslandNote> notes;
                SyncStats stats;
                kept->weighted_mean(x.data(), x.size(), {weight, 0.0}, notes, stats,
                                    {rounds[r].codec});
                if (world.rank() == 0) results[r] = x;
            }
        });
        return results;
    };
    const auto kept = run(false), fresh = run(true);
    for (size_t r = 0; r < rounds.size(); r++) {
        INFO("round " << r);
        REQUIRE(kept[r] == fresh[r]);
    }
    REQUIRE(kept[2] == island_vector(2, 3000));  // island 1 absent: the mean is island 0's
}

TEST_CASE("the parameter fingerprint depends on the bytes alone, not on threads", "[sync]") {
    std::vector<uint8_t> bytes((size_t(3) << 20) + 5);
    Rng rng(3, 3);
    for (uint8_t& b : bytes) b = uint8_t(rng.next_u64());
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    const uint32_t one = fingerprint32(bytes.data(), bytes.size());
    omp_set_num_threads(4);
    const uint32_t four = fingerprint32(bytes.data(), bytes.size());
    omp_set_num_threads(threads);
    REQUIRE(one == four);
    for (size_t at : {size_t(0), size_t(1) << 20, bytes.size() - 1}) {
        bytes[at] ^= 1;
        REQUIRE(fingerprint32(bytes.data(), bytes.size()) != one);
        bytes[at] ^= 1;
    }
    REQUIRE(fingerprint32(bytes.data(), bytes.size() - 1) != one);
}
