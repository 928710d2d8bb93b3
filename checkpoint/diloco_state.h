// The files of a DiLoCo checkpoint directory DIR, which DilocoLoop::save and ::resume write and
// read: DIR/model.safetensors (the global model), DIR/outer.safetensors (the outer state below),
// DIR/island-I/state.safetensors (the AdamW state and data position of the island with id I,
// and in local mode its own model), DIR/island-I/residual-R.safetensors (local rank R's codec
// residuals).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "optim/diloco.h"

namespace diloco {

// What DIR/outer.safetensors holds (world rank 0 writes it).
struct OuterState {
    std::string mode;         // local, ddp or diloco
    int step = 0;             // inner steps every island has taken
    int islands = 1;
    std::vector<float> m, v;  // the outer optimizer's moments (v: Adam's, else empty)
    std::vector<FragmentCounters> fragments;
    std::map<int, uint64_t> data_positions;  // of every island ever saved, by island id
    std::vector<int> island_ids;             // of the islands saved (read: 0..islands-1 if absent)
};

std::string outer_state_file(const std::string& dir);
std::string island_dir(const std::string& dir, int island);
std::string island_state_file(const std::string& dir, int island);
std::string residual_file(const std::string& dir, int island, int local_rank);

void write_outer_state(const std::string& file, const OuterState& state);
// Checks the file against this run: n parameters, Adam's v or not, `fragments` fragments.
// Errors name the file and what does not fit.
OuterState read_outer_state(const std::string& file, size_t n, bool adam, int fragments);

// A rank's error-feedback residuals: its island's and its owned sub-slices' (n floats each).
void write_residuals(const std::string& file, const std::vector<float>& residual,
                     const std::vector<float>& owner_residual);
void read_residuals(const std::string& file, std::vector<float>& residual,
                    std::vector<float>& owner_residual);

}  // namespace diloco
