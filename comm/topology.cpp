// Island assignment and the island, cross-island and leader communicators built from it.
// Assignment is a pure function of the options and the world, so every rank agrees (or fails
// with the same error) without talking.
#include "comm/topology.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <sstream>

#include "util/error.h"
#include "util/parse.h"

namespace diloco {

bool Topology::uniform() const {
    return std::all_of(island_sizes.begin(), island_sizes.end(),
                       [&](int s) { return s == island_sizes[0]; });
}

namespace {

std::vector<int> parse_sizes(const std::string& text) {
    std::vector<int> sizes;
    for (const std::string& item : split_list(text, ',')) {
        int v = 0;
        require(parse_int(item, v) && v > 0,
                "--island-sizes '" + text + "': '" + item + "' is not a positive integer");
        sizes.push_back(v);
    }
    require(!sizes.empty(), "--island-sizes is empty");
    return sizes;
}

std::vector<int> contiguous(const std::vector<int>& sizes) {
    std::vector<int> island_of_rank;
    for (size_t i = 0; i < sizes.size(); i++) island_of_rank.insert(island_of_rank.end(), sizes[i], int(i));
    return island_of_rank;
}

}  // namespace

std::vector<int> assign_islands(int world_size, const std::string& islands,
                                const std::string& sizes,
                                const std::vector<std::string>& host_of_rank) {
    const std::string world = std::to_string(world_size) + " rank" + (world_size == 1 ? "" : "s");
    if (!sizes.empty()) {
        std::vector<int> s = parse_sizes(sizes);
        int total = 0;
        for (int v : s) total += v;
        require(total == world_size, "--island-sizes " + sizes + " sums to " +
                                         std::to_string(total) + ", but the world has " + world);
        return contiguous(s);
    }
    if (islands == "host") {
        std::vector<std::string> hosts;  // in order of first appearance
        std::vector<int> island_of_rank;
        for (const std::string& h : host_of_rank) {
            auto it = std::find(hosts.begin(), hosts.end(), h);
            if (it == hosts.end()) it = hosts.insert(hosts.end(), h);
            island_of_rank.push_back(static_cast<int>(it - hosts.begin()));
        }
        return island_of_rank;
    }
    int k = 0;
    require(parse_int(islands, k) && k > 0,
            "--islands '" + islands + "': expected a positive count or 'host'");
    require(world_size % k == 0, "--islands " + islands + " does not divide the " + world +
                                     " (use --island-sizes for unequal islands)");
    return contiguous(std::vector<int>(k, world_size / k));
}

Topology make_topology(int world_rank, const std::vector<int>& island_of_rank) {
    Topology t;
    t.world_rank = world_rank;
    t.world_size = static_cast<int>(island_of_rank.size());
    t.island_of_rank = island_of_rank;
    t.islands = *std::max_element(island_of_rank.begin(), island_of_rank.end()) + 1;
    t.island_sizes.assign(t.islands, 0);
    t.island = island_of_rank[world_rank];
    for (int r = 0; r < t.world_size; r++) {
        if (island_of_rank[r] == t.island && r < world_rank) t.local_rank++;
        t.island_sizes[island_of_rank[r]]++;
    }
    t.local_size = t.island_sizes[t.island];
    t.island_ids.resize(t.islands);
    std::iota(t.island_ids.begin(), t.island_ids.end(), 0);
    return t;
}

int Topology::id_count() const { return *std::max_element(island_ids.begin(), island_ids.end()) + 1; }

std::vector<int> parse_island_ids(const std::string& ids, int islands, const std::string& name) {
    std::vector<int> out;
    if (ids.empty()) {
        out.resize(islands);
        std::iota(out.begin(), out.end(), 0);
        return out;
    }
    const std::string what = name + " '" + ids + "': ";
    for (const std::string& word : split_list(ids, ',')) {
        int id = -1;
        // A bound keeps the data's stream count and the checkpoint's directories sane.
        require(parse_int(word, id) && id >= 0 && id < 4096,
                what + "'" + word + "' is not an id from 0 to 4095");
        require(std::find(out.begin(), out.end(), id) == out.end(),
                what + "id " + word + " is given twice");
        out.push_back(id);
    }
    require(static_cast<int>(out.size()) == islands,
            what + std::to_string(out.size()) + " ids for " + std::to_string(islands) +
                " island" + (islands == 1 ? "" : "s"));
    return out;
}

namespace {

int env_int(const char* name, int fallback) {
    const char* text = std::getenv(name);
    if (!text) return fallback;
    int v = 0;
    require(parse_int(text, v) && v >= 0,
            std::string("environment variable ") + name + "='" + text +
                "' is not a non-negative integer");
    return v;
}

// Slurm's SLURM_TASKS_PER_NODE: counts per node, "N(xM)" for M nodes of N tasks each.
int slurm_tasks_on_node(const std::string& spec, int node) {
    const std::string what = "environment variable SLURM_TASKS_PER_NODE='" + spec + "'";
    std::stringstream in(spec);
    int first = 0;
    for (std::string item; std::getline(in, item, ',');) {
        const size_t open = item.find("(x");
        int tasks = 0, repeat = 1;
        const bool repeated = open != std::string::npos && item.back() == ')';
        require(parse_int(repeated ? item.substr(0, open) : item, tasks) && tasks > 0 &&
                    (!repeated ||
                     (parse_int(item.substr(open + 2, item.size() - open - 3), repeat) &&
                      repeat > 0)),
                what + ": '" + item + "' is not N or N(xM)");
        if (node < first + repeat) return tasks;
        first += repeat;
    }
    throw Error(what + " lists " + std::to_string(first) + " nodes, SLURM_NODEID is " +
                std::to_string(node));
}

}  // namespace

NodePlace launcher_node_place() {
    NodePlace p;
    if (std::getenv("OMPI_COMM_WORLD_LOCAL_RANK")) {
        p.rank = env_int("OMPI_COMM_WORLD_LOCAL_RANK", 0);
        p.size = env_int("OMPI_COMM_WORLD_LOCAL_SIZE", p.rank + 1);
    } else if (std::getenv("SLURM_LOCALID")) {
        p.rank = env_int("SLURM_LOCALID", 0);
        const char* spec = std::getenv("SLURM_TASKS_PER_NODE");
        p.size = spec ? slurm_tasks_on_node(spec, env_int("SLURM_NODEID", 0)) : p.rank + 1;
    }
    require(p.rank < p.size, "the launcher puts this process at local rank " +
                                 std::to_string(p.rank) + " of " + std::to_string(p.size));
    return p;
}

int gpu_for_rank(const NodePlace& place, int gpu_count, bool share) {
    require(gpu_count > 0, "--device cuda: this machine has no CUDA device (or no driver)");
    require(share || place.size <= gpu_count,
            std::to_string(place.size) + " ranks on this machine but " +
                std::to_string(gpu_count) + " GPU" + (gpu_count == 1 ? "" : "s") +
                ": start one rank per GPU, or pass --share-gpus to let ranks share them");
    return place.rank % gpu_count;
}

NodePlace gpu_place(Comm& world, bool on_gpu) {
    return world.split(on_gpu ? 1 : 0, world.rank())->node_place();
}

static std::vector<std::string> gather_hosts(Comm& world) {
    const size_t width = 256;
    std::vector<char> mine(width, '\0'), all(width * world.size());
    std::string host = world.host();
    std::memcpy(mine.data(), host.data(), std::min(host.size(), width - 1));
    world.allgatherv(mine.data(), all.data(), std::vector<size_t>(world.size(), width));
    std::vector<std::string> hosts;
    for (int r = 0; r < world.size(); r++) hosts.emplace_back(all.data() + r * width);
    return hosts;
}

IslandComms connect_islands(Comm& world, const std::string& islands, const std::string& sizes) {
    std::vector<std::string> hosts;
    if (islands == "host" && sizes.empty()) hosts = gather_hosts(world);
    IslandComms c;
    c.topology = make_topology(world.rank(),
                               assign_islands(world.size(), islands, sizes, hosts));
    const Topology& t = c.topology;
    c.world = &world;
    c.node = world.node_place();
    c.island = world.split(t.island, t.local_rank);
    c.cross = world.split(t.local_rank, t.island);
    c.leaders = world.split(t.local_rank == 0 ? 0 : 1, t.island);
    return c;
}

}  // namespace diloco
