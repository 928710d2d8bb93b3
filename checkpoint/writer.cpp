// Step-numbered checkpoint directories behind an atomically switched link: each rank writes its
// part of a save on a background thread and leaves a mark; rank 0 switches the link once all are.
#include "checkpoint/writer.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <utility>
#include <vector>

#include "util/error.h"
#include "util/files.h"
#include "util/parse.h"

namespace fs = std::filesystem;

namespace diloco {

namespace {

constexpr const char* kStepPrefix = "step-";

std::string written_mark(const std::string& dir, int rank) {
    return dir + "/.written-" + std::to_string(rank);
}

double steady_seconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// The step of a directory named step-N, or -1.
int step_of(const fs::path& dir) {
    const std::string name = dir.filename().string();
    int step = -1;
    const size_t prefix = std::string(kStepPrefix).size();
    if (!name.starts_with(kStepPrefix) || !parse_int(name.substr(prefix), step)) return -1;
    return step;
}

// The parts of a progress directory's name BASE.island-I.at-M: base is empty when the name is
// not one; step is -1 while it is half written (BASE.island-I.at-M.tmp).
struct ProgressName {
    std::string base;
    int island = -1, step = -1;
};

ProgressName progress_name(const fs::path& dir) {
    const std::string name = dir.filename().string();
    const size_t island = name.find(".island-"), at = name.find(".at-", island);
    ProgressName p;
    if (island == std::string::npos || at == std::string::npos) return p;
    constexpr size_t kIsland = sizeof ".island-" - 1, kAt = sizeof ".at-" - 1;
    if (!parse_int(name.substr(island + kIsland, at - island - kIsland), p.island)) return p;
    p.base = name.substr(0, island);
    if (!parse_int(name.substr(at + kAt), p.step)) p.step = -1;
    return p;
}

// Whole progress past the save base_dir (the step directory itself), by island, then step.
std::map<std::pair<int, int>, fs::path> progress_past(const fs::path& base_dir) {
    std::map<std::pair<int, int>, fs::path> found;
    std::error_code ec;
    for (const fs::directory_entry& e : fs::directory_iterator(base_dir.parent_path(), ec)) {
        const ProgressName p = progress_name(e.path());
        if (p.base == base_dir.filename() && p.step >= 0) found[{p.island, p.step}] = e.path();
    }
    return found;
}

// Whole progress past the save a checkpoint link points at; none when it points nowhere.
std::map<std::pair<int, int>, fs::path> progress_past_link(const std::string& dir) {
    std::error_code ec;
    const fs::path base = fs::canonical(dir, ec);  // the link's target
    return ec ? std::map<std::pair<int, int>, fs::path>{} : progress_past(base);
}

// ROOT itself: absent, an empty directory or a link, else the error that names --save.
void check_root_kind(const std::string& root) {
    const fs::path path(root);
    std::error_code ec;
    if (fs::is_symlink(fs::symlink_status(path, ec))) return;  // an earlier run's link
    if (!fs::exists(path, ec) || (fs::is_directory(path, ec) && fs::is_empty(path, ec))) return;
    throw Error("--save " + root + ": exists and is not a checkpoint link (" +
                (fs::is_directory(path) ? "a directory: a checkpoint of an older diloco or "
                                          "something else; --resume reads it, save elsewhere"
                                        : "a file") +
                ")");
}

// The outermost directory of `dir` that does not exist yet; empty when `dir` exists.
fs::path first_missing(const fs::path& dir) {
    fs::path missing;
    std::error_code ec;
    for (fs::path p = fs::absolute(dir); !fs::exists(p, ec) && p != p.parent_path();
         p = p.parent_path())
        missing = p;
    return missing;
}

}  // namespace

std::string progress_dir(const std::string& base_dir, int island, int step) {
    char suffix[48];
    std::snprintf(suffix, sizeof suffix, ".island-%d.at-%08d", island, step);
    return base_dir + suffix;
}

void keep_progress(const std::string& base_dir, int island, int step,
                   const std::function<void(const std::string&)>& write) {
    const std::string dir = progress_dir(base_dir, island, step), partial = dir + ".tmp";
    if (!fs::exists(dir)) {  // else kept already: the same step is the same state
        fs::remove_all(partial);
        fs::create_directories(partial);
        write(partial);
        fs::rename(partial, dir);
    }
    for (const auto& [at, path] : progress_past(base_dir))
        if (at.first == island && at.second != step) fs::remove_all(path);
}

std::map<int, int> progress_steps(const std::string& dir) {
    std::map<int, int> newest;
    for (const auto& [at, path] : progress_past_link(dir)) newest[at.first] = at.second;  // in order
    return newest;
}

std::string newest_progress(const std::string& dir, int island) {
    std::string newest;
    for (const auto& [at, path] : progress_past_link(dir))
        if (at.first == island) newest = path.string();  // in step order
    return newest;
}

void check_checkpoint_root(const std::string& root) {
    check_root_kind(root);
    const std::string steps = root + ".steps";
    const fs::path created = first_missing(steps);
    std::string error;
    try {
        require_writable_dir(steps, "--save");
    } catch (const Error& e) {
        error = e.what();
    }
    std::error_code ec;
    if (!created.empty()) fs::remove_all(created, ec);
    if (!error.empty()) throw Error(error);
}

void prepare_checkpoint_root(const std::string& root) {
    check_root_kind(root);
    std::error_code ec;
    // A link of an earlier run keeps pointing at that run's save until this one's.
    if (fs::is_directory(fs::symlink_status(root, ec))) fs::remove(root, ec);  // empty
    require_writable_dir(root + ".steps", "--save");
    // Saves newer than the one ROOT points to never finished (a crash during a save): their
    // files may come from different steps, and this run writes those steps afresh.
    const int published = published_step(root);
    // What cannot be removed now (a writer of the crashed job still at it) is harmless: its
    // marks do not carry this run's number, and a later prune takes it.
    for (const fs::directory_entry& e : fs::directory_iterator(root + ".steps"))
        if (step_of(e.path()) > published) fs::remove_all(e.path(), ec);
}

int published_step(const std::string& root) {
    std::error_code ec;
    const fs::path target = fs::read_symlink(root, ec);
    return ec ? -1 : step_of(target);
}

CheckpointWriter::CheckpointWriter(std::string root, int rank, int ranks, int keep,
                                   double timeout_s, uint64_t run)
    : root_(std::move(root)), steps_(root_ + ".steps"), rank_(rank), ranks_(ranks), keep_(keep),
      timeout_s_(timeout_s), run_(std::to_string(run)) {}

CheckpointWriter::~CheckpointWriter() {
    try {
        wait();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "diloco: error: the last checkpoint was not saved: %s\n", e.what());
    }
}

std::string CheckpointWriter::step_dir(int step) const {
    char name[32];
    std::snprintf(name, sizeof name, "%s%08d", kStepPrefix, step);
    return steps_ + "/" + name;
}

void CheckpointWriter::save(int step, std::function<void(const std::string&)> write) {
    wait();
    worker_ = std::thread([this, step, write = std::move(write)] {
        try {
            write_part(step, write);
            if (rank_ == 0) publish(step);
        } catch (...) {
            error_ = std::current_exception();
        }
    });
}

void CheckpointWriter::wait() {
    if (worker_.joinable()) worker_.join();
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

void CheckpointWriter::give_up_after(double seconds) {
    give_up_at_ = steady_seconds() + seconds;
}

void CheckpointWriter::write_part(int step, const std::function<void(const std::string&)>& write) {
    const std::string dir = step_dir(step);
    fs::create_directories(dir);
    write(dir);
    write_file_atomic(written_mark(dir, rank_), run_);
}

// Every rank's part is in place: point ROOT at the save. Until then a reader (or a crash) sees
// the save before, whole.
void CheckpointWriter::publish(int step) {
    const std::string dir = step_dir(step);
    const double deadline = steady_seconds() + timeout_s_;
    auto written = [&](int r) {
        const std::string mark = written_mark(dir, r);
        return fs::exists(mark) && read_file(mark) == run_;
    };
    for (int r = 0; r < ranks_; r++)
        while (!written(r)) {
            // Training failed: a rank that died never writes its part. The save goes out with
            // the parts of the ranks alive (rank 0's global model and outer state among them),
            // and a resume starts the islands whose state is missing from the global model.
            if (r > 0 && written(0) && steady_seconds() >= give_up_at_) break;
            require(steady_seconds() < deadline,
                    dir + ": rank " + std::to_string(r) + " did not write its part within " +
                        std::to_string(int(timeout_s_)) + " s; the checkpoint link stays");
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
    replace_symlink_atomic(root_, fs::path(steps_).filename().string() + "/" +
                                      fs::path(dir).filename().string());
    prune(step);
}

void CheckpointWriter::prune(int newest) {
    std::vector<int> steps;
    for (const fs::directory_entry& e : fs::directory_iterator(steps_)) {
        const int step = step_of(e.path());
        if (step >= 0 && step <= newest) steps.push_back(step);  // never one still being written
    }
    std::sort(steps.rbegin(), steps.rend());
    for (size_t i = static_cast<size_t>(keep_); keep_ > 0 && i < steps.size(); i++)
        fs::remove_all(step_dir(steps[i]));
    remove_progress_before(newest);
}

// Progress past a save older than the newest one is never resumed again.
void CheckpointWriter::remove_progress_before(int newest) {
    std::vector<fs::path> old;
    for (const fs::directory_entry& e : fs::directory_iterator(steps_)) {
        const ProgressName p = progress_name(e.path());
        const int base = p.base.empty() ? -1 : step_of(p.base);
        if (base >= 0 && base < newest) old.push_back(e.path());
    }
    for (const fs::path& p : old) fs::remove_all(p);
}

}  // namespace diloco
