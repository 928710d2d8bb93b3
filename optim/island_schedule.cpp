// The island schedule of DiLoCo's outer steps: "FROM-TO:I+J" ranges checked once at start, and
// seeded drop-out drawn per island and outer step, so every rank agrees without talking.
#include "optim/island_schedule.h"

#include <algorithm>

#include "util/error.h"
#include "util/parse.h"
#include "util/rng.h"

namespace diloco {

namespace {

const std::string kOption = "--island-schedule";

int parse_count(const std::string& text) {
    int v = -1;
    require(parse_int(text, v) && v >= 0, kOption + ": '" + text + "' is not a count");
    return v;
}

}  // namespace

IslandSchedule::IslandSchedule(const std::string& spec, int islands, double drop_prob,
                               uint64_t seed)
    : islands_(islands), drop_prob_(drop_prob), seed_(seed) {
    for (const std::string& item : split_list(spec, ',')) {
        const size_t dash = item.find('-'), colon = item.find(':');
        require(dash != std::string::npos && colon != std::string::npos && dash < colon,
                kOption + ": '" + item + "' is not FROM-TO:ISLAND+ISLAND...");
        Range r{parse_count(item.substr(0, dash)),
                parse_count(item.substr(dash + 1, colon - dash - 1)), {}};
        for (const std::string& id : split_list(item.substr(colon + 1), '+')) {
            const int island = parse_count(id);
            require(std::find(r.islands.begin(), r.islands.end(), island) == r.islands.end(),
                    kOption + ": '" + item + "' names island " + id + " twice");
            require(islands == 0 || island < islands,
                    kOption + " names island " + id + " but there are " +
                        std::to_string(islands));
            r.islands.push_back(island);
        }
        require(r.from >= 1 && r.from <= r.to && !r.islands.empty(),
                kOption + ": '" + item + "' needs 1 <= FROM <= TO and at least one island");
        ranges_.push_back(r);
    }
}

std::vector<bool> IslandSchedule::present(int outer_step) const {
    std::vector<bool> present(islands_, true);
    for (const Range& r : ranges_) {
        if (outer_step < r.from || outer_step > r.to) continue;
        present.assign(islands_, false);
        for (int i : r.islands) present[i] = true;
    }
    for (int i = 0; i < islands_ && drop_prob_ > 0; i++) {
        Rng rng(seed_ ^ 0xD50Bu, (uint64_t(outer_step) << 20) + i);
        if (rng.uniform() < drop_prob_) present[i] = false;
    }
    return present;
}

}  // namespace diloco
