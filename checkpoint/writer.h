// Checkpoints that a crash cannot tear: each save goes to its own directory ROOT.steps/step-N,
// written on a background thread from a snapshot; ROOT is a link switched to it atomically.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <thread>

namespace diloco {

// Checks before training starts, leaving nothing on disk, that ROOT can become the checkpoint
// link (absent, an empty directory or a link already) and that ROOT.steps can be written: it
// creates what is missing of ROOT.steps, proves it writable and removes what it created. Errors
// name --save and the path.
void check_checkpoint_root(const std::string& root);
// At the first save: the same checks, then ROOT made ready (an empty directory removed) and
// ROOT.steps created, without the saves that a crash left unfinished.
void prepare_checkpoint_root(const std::string& root);

// The step of the save the link ROOT points to, or -1 when ROOT is no such link (yet).
int published_step(const std::string& root);

// An island's progress past a save: what it trained after the outer step the save holds, kept
// when a run stops in the middle of a round (a peer island lost, a stop signal), so that a
// restart loses none of it. It lives beside the save: BASE.island-I.at-M for island I at step M.
std::string progress_dir(const std::string& base_dir, int island, int step);
// Writes progress through write(dir) into a temporary directory renamed into place when
// whole, then removes the island's older progress past the same save.
void keep_progress(const std::string& base_dir, int island, int step,
                   const std::function<void(const std::string& dir)>& write);
// The newest whole progress of `island` past the save `dir` (a link is followed), or "".
std::string newest_progress(const std::string& dir, int island);
// The step of each island's newest whole progress past the save `dir`, by island.
std::map<int, int> progress_steps(const std::string& dir);

class CheckpointWriter {
public:
    // rank, ranks: this process among all that write a part of each save; keep: the newest saves
    // kept (0: all); timeout_s: how long rank 0 waits for the other ranks' parts; run: a number
    // every rank of this run shares and other runs do not, so that the marks a crashed run left
    // in a directory are not taken for this run's.
    CheckpointWriter(std::string root, int rank, int ranks, int keep, double timeout_s,
                     uint64_t run);
    // Waits for the save in flight; its error, if any, is printed, not thrown.
    ~CheckpointWriter();
    CheckpointWriter(const CheckpointWriter&) = delete;
    CheckpointWriter& operator=(const CheckpointWriter&) = delete;

    // Writes this rank's part of the save at `step` through `write(dir)` on a background thread,
    // once the save before it is done (so at most one is in flight, and a slow disk slows
    // training rather than piling up copies). Rank 0 then waits for every rank's part, switches
    // ROOT to the new directory and removes saves beyond `keep`.
    void save(int step, std::function<void(const std::string& dir)> write);
    // Waits for the save in flight; throws its error.
    void wait();
    // After training failed: rank 0 waits at most `seconds` more for the other ranks' parts of
    // the save in flight (a rank that died never writes its part), then publishes what it has.
    void give_up_after(double seconds);

    std::string step_dir(int step) const;

private:
    void write_part(int step, const std::function<void(const std::string&)>& write);
    void publish(int step);
    void prune(int newest);
    void remove_progress_before(int newest);

    std::string root_, steps_;
    int rank_, ranks_, keep_;
    double timeout_s_;
    std::string run_;
    std::atomic<double> give_up_at_{std::numeric_limits<double>::infinity()};  // steady s
    std::thread worker_;
    std::exception_ptr error_;
};

}  // namespace diloco
