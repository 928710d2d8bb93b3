// `diloco supervise -- COMMAND`: keeps a training job going through faults. When the job dies
// it is started again with --resume from its newest complete checkpoint, on the hosts alive.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "checkpoint/writer.h"
#include "tools/commands.h"
#include "tools/options.h"
#include "util/error.h"

namespace diloco {

namespace {

struct SuperviseOptions {
    int restarts = 10;
    std::vector<std::string> hosts;
    std::string probe;
    double probe_timeout_s = 30;
    int min_hosts = 1;
    int slots = 1;
    double poll_s = 2;
    double stall_s = 0;
    int grace_s = 5;
    double host_wait_s = 3600;  // 0: wait for --min-hosts as long as it takes
    std::vector<std::string> command;
};

using Clock = std::chrono::steady_clock;

// How often a wait for hosts says what it waits for.
constexpr double kSayEvery = 60;
constexpr double kWeekSeconds = 7 * 24 * 3600;

double seconds_since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
}

// The value after `flag` in the command, or "".
std::string flag_value(const std::vector<std::string>& command, const std::string& flag) {
    auto it = std::find(command.begin(), command.end(), flag);
    return it != command.end() && it + 1 != command.end() ? *(it + 1) : "";
}

// Every {key} in text replaced by value.
std::string substitute(std::string text, const std::string& key, const std::string& value) {
    for (size_t at; (at = text.find(key)) != std::string::npos;) text.replace(at, key.size(), value);
    return text;
}

std::string shell_quote(const std::string& word) {
    return "'" + substitute(word, "'", "'\\''") + "'";
}

// The last step a metrics log records after its first `from` bytes, or -1.
int last_logged_step(const std::string& log, std::streamoff from = 0) {
    std::ifstream in(log);
    in.seekg(from);
    int step = -1;
    for (std::string line; std::getline(in, line);) {
        const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_object() && j.contains("step") && j["step"].is_number_integer())
            step = j["step"].get<int>();
    }
    return step;
}

class Supervisor {
public:
    explicit Supervisor(const SuperviseOptions& o)
        : o_(o), save_(flag_value(o.command, "--save")), log_(flag_value(o.command, "--log")),
          inner_steps_(std::atoi(flag_value(o.command, "--inner-steps").c_str())) {
        require(!save_.empty(), "supervise: the command has no --save DIR, so a restart could "
                                "not resume: add one (and --save-every)");
        require(o.hosts.empty() || !o.probe.empty(), "supervise: --hosts needs --probe");
        require(o.min_hosts <= std::max<int>(1, static_cast<int>(o.hosts.size())),
                "supervise: --min-hosts " + std::to_string(o.min_hosts) + " exceeds the " +
                    std::to_string(o.hosts.size()) + " host(s) of --hosts: it could never start");
        require(o.stall_s == 0 || !log_.empty(),
                "supervise: --stall watches the metrics log: the command needs --log FILE");
        const bool placeholders = std::ranges::any_of(o.command, [](const std::string& w) {
            return w.find("{hosts}") != std::string::npos || w.find("{np}") != std::string::npos ||
                   w.find("{island-ids}") != std::string::npos;
        });
        require(!placeholders || !o.hosts.empty(),
                "supervise: {hosts}, {np} and {island-ids} in the command need --hosts");
    }

    void run() {
        for (int launch = 0;; launch++) {
            const std::vector<std::string> hosts = wait_for_hosts();
            const int start_step = published_step(save_);
            const pid_t job = start(command_line(hosts, start_step >= 0), o_.grace_s);
            say("launch " + std::to_string(launch) + ": " + describe(hosts) +
                (start_step >= 0 ? ", resuming from step " + std::to_string(start_step)
                                 : ", from the start"));
            const Outcome end = watch(job, hosts, start_step);
            if (end.status == 0 && !end.rejoin) {
                say("the job finished after " + std::to_string(launch) + " restart(s)");
                return;
            }
            if (!end.rejoin) {
                failures_++;
                require(failures_ <= o_.restarts,
                        "supervise: the job failed " + std::to_string(failures_) +
                            " times, more than --restarts " + std::to_string(o_.restarts));
                report_loss(end);
            }
        }
    }

private:
    struct Outcome {
        int status = 0;       // the job's exit status (128 + signal when killed)
        bool rejoin = false;  // stopped by us to take back a host that returned
        int last_step = -1;   // the last step the job logged
        Clock::time_point ended;
    };

    void say(const std::string& what) const {
        std::fprintf(stderr, "diloco supervise: %s\n", what.c_str());
        std::fflush(stderr);
    }

    std::string describe(const std::vector<std::string>& hosts) const {
        if (o_.hosts.empty()) return "the command as given";
        std::string list;
        for (const std::string& h : hosts) list += (list.empty() ? "" : ",") + h;
        return std::to_string(hosts.size()) + " of " + std::to_string(o_.hosts.size()) +
               " hosts (" + list + ")";
    }

    bool alive(const std::string& host) const {
        // A probe that hangs (ssh to a host cut off) must not hang the supervisor: coreutils'
        // timeout ends it, and the host counts as down.
        const std::string probe = "timeout -k 1 " + fmt(o_.probe_timeout_s) + " sh -c " +
                                  shell_quote(substitute(o_.probe, "{host}", host)) +
                                  " >/dev/null 2>&1";
        return std::system(probe.c_str()) == 0;
    }

    std::vector<std::string> live_hosts() const {
        std::vector<std::string> up;
        for (const std::string& h : o_.hosts)
            if (alive(h)) up.push_back(h);
        return up;
    }

    // The hosts that answer their probe, once there are at least --min-hosts of them: said when
    // the wait begins and each minute after, and given up after --host-wait seconds.
    std::vector<std::string> wait_for_hosts() const {
        if (o_.hosts.empty()) return {};
        const auto start = Clock::now();
        double said_at = -kSayEvery;
        for (;;) {
            std::vector<std::string> up = live_hosts();
            if (static_cast<int>(up.size()) >= o_.min_hosts) return up;
            const double waited = seconds_since(start);
            const std::string what = describe(up) + " answer, --min-hosts " +
                                     std::to_string(o_.min_hosts) + " needed";
            require(o_.host_wait_s == 0 || waited < o_.host_wait_s,
                    "supervise: gave up after waiting " + fmt(waited) + " s (--host-wait) for "
                    "hosts: " + what);
            if (waited - said_at >= kSayEvery) {
                say("waiting for hosts (" + std::to_string(int(waited)) + " s so far): " + what);
                said_at = waited;
            }
            double pause = o_.poll_s;
            if (o_.host_wait_s > 0) pause = std::min(pause, o_.host_wait_s - waited);
            std::this_thread::sleep_for(std::chrono::duration<double>(pause));
        }
    }

    // {island-ids} is each host's place in --hosts: with one island per host, an island keeps
    // its id, and so its state and progress, when a host before it is missing.
    std::string command_line(const std::vector<std::string>& hosts, bool resume) const {
        std::string host_list, ids;
        for (const std::string& h : hosts) {
            host_list += (host_list.empty() ? "" : ",") + h + ":" + std::to_string(o_.slots);
            const auto place = std::ranges::find(o_.hosts, h) - o_.hosts.begin();
            ids += (ids.empty() ? "" : ",") + std::to_string(place);
        }
        const std::string np = std::to_string(hosts.size() * o_.slots);
        std::string line;
        bool skip = false;
        for (const std::string& word : o_.command) {
            if (std::exchange(skip, false)) continue;
            if (resume && word == "--resume") {  // the newest checkpoint comes at the end
                skip = true;
                continue;
            }
            const std::string filled = substitute(
                substitute(substitute(word, "{hosts}", host_list), "{np}", np), "{island-ids}", ids);
            line += shell_quote(filled) + " ";
        }
        return resume ? line + "--resume " + shell_quote(save_) : line;
    }

    static pid_t start(const std::string& line, int grace_s) {
        const pid_t pid = fork();
        require(pid >= 0, "supervise: fork failed");
        if (pid == 0) {
            setpgid(0, 0);
            // When a rank dies, Open MPI's mpirun waits this long, sends the others SIGTERM,
            // waits as long again and sends SIGKILL: the islands alive keep their round's
            // progress in between.
            setenv("OMPI_MCA_odls_base_sigkill_timeout", std::to_string(grace_s).c_str(), 0);
            execl("/bin/sh", "sh", "-c", ("exec " + line).c_str(), static_cast<char*>(nullptr));
            _exit(127);
        }
        setpgid(pid, pid);
        return pid;
    }

    // Until the job ends, or a host that was down answers again and a checkpoint newer than
    // its return exists: then the job stops (SIGTERM) to start again with it.
    Outcome watch(pid_t job, const std::vector<std::string>& hosts, int start_step) {
        Outcome out;
        auto last_probe = Clock::now();
        int returned_at_step = -1;
        bool recovered = start_step < 0 || log_.empty();
        // The log is appended to: only what this launch writes tells whether it trains.
        std::error_code ec;
        const auto log_start = static_cast<std::streamoff>(std::filesystem::file_size(log_, ec));
        auto last_growth = Clock::now();
        std::uintmax_t log_size = ec ? 0 : std::uintmax_t(log_start);
        for (;;) {
            int status = 0;
            if (waitpid(job, &status, WNOHANG) == job) {
                out.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
                out.ended = Clock::now();
                out.last_step = log_.empty() ? -1 : last_logged_step(log_);
                return out;
            }
            if (!recovered && last_logged_step(log_, ec ? 0 : log_start) > start_step) {
                recovered = true;
                if (failed_at_)
                    say("recovered: training again " + fmt(seconds_since(*failed_at_)) +
                        " s after the failure");
                failed_at_.reset();
            }
            // mpirun can wait forever for a daemon on a host that is cut off, after its ranks
            // gave up (--sync-timeout): a log that stops growing ends the job.
            const std::uintmax_t size = log_.empty() ? 0 : std::filesystem::file_size(log_, ec);
            if (!ec && size != log_size) log_size = size, last_growth = Clock::now();
            if (o_.stall_s > 0 && seconds_since(last_growth) > o_.stall_s) {
                say("no step logged for " + fmt(o_.stall_s) + " s: stopping the job");
                kill(-job, SIGKILL);
                waitpid(job, &status, 0);
                out.status = 128 + SIGKILL;
                out.ended = Clock::now();
                out.last_step = last_logged_step(log_);
                return out;
            }
            if (returned_at_step < 0 && hosts.size() < o_.hosts.size() &&
                seconds_since(last_probe) > o_.poll_s) {
                last_probe = Clock::now();
                if (live_hosts().size() > hosts.size()) {
                    returned_at_step = std::max(published_step(save_), 0);
                    say("a host answers again; it rejoins at the next checkpoint");
                }
            }
            if (returned_at_step >= 0 && published_step(save_) > returned_at_step) {
                kill(-job, SIGTERM);
                waitpid(job, &status, 0);
                out.rejoin = true;
                return out;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    }

    void report_loss(const Outcome& end) {
        const int saved = published_step(save_);
        std::string what = "the job failed (exit status " + std::to_string(end.status) + ")";
        if (end.last_step >= 0 && saved >= 0) {
            const int lost = end.last_step - saved;
            const std::map<int, int> kept = progress_steps(save_);
            what += " at step " + std::to_string(end.last_step) + "; " + kept_progress(kept) +
                    "restarting from step " + std::to_string(saved) + ": " +
                    std::to_string(lost) + " step(s) lost" + (kept.empty() ? "" : " by each");
            if (inner_steps_ > 0)
                what += " (" + fmt(double(lost) / inner_steps_) + " outer round(s) of H = " +
                        std::to_string(inner_steps_) + ")";
        }
        say(what + ", restart " + std::to_string(failures_) + " of " +
            std::to_string(o_.restarts));
        failed_at_ = end.ended;
    }

    // "islands 0 and 2 keep their progress (to steps 69 and 70), the others are ": the islands
    // whose leaders kept what they trained past the checkpoint, and lose none of it.
    static std::string kept_progress(const std::map<int, int>& kept) {
        if (kept.empty()) return "";
        std::string islands, steps;
        size_t i = 0;
        for (const auto& [island, step] : kept) {
            const char* sep = ++i == 1 ? "" : i == kept.size() ? " and " : ", ";
            islands += sep + std::to_string(island);
            steps += sep + std::to_string(step);
        }
        return (kept.size() == 1
                    ? "island " + islands + " keeps its progress (to step " + steps + ")"
                    : "islands " + islands + " keep their progress (to steps " + steps + ")") +
               ", the others are ";
    }

    static std::string fmt(double x) {
        char text[32];
        std::snprintf(text, sizeof text, "%.2f", x);
        return text;
    }

    const SuperviseOptions& o_;
    std::string save_, log_;
    int inner_steps_;
    int failures_ = 0;
    std::optional<Clock::time_point> failed_at_;
};

}  // namespace

void add_supervise_command(CLI::App& app) {
    auto o = std::make_shared<SuperviseOptions>();
    CLI::App* cmd = app.add_subcommand(
        "supervise", "run a training job and start it again from its last checkpoint when it "
                     "dies, on the hosts that answer");
    add_number(*cmd, "--restarts", o->restarts, {.min = 0, .max = 1 << 20},
               "failures tolerated before giving up");
    add_list(*cmd, "--hosts", o->hosts, CLI::Validator(),
             "hosts of the job, for {hosts}, {np} and {island-ids} (each host's place in this "
             "list, for --island-ids with one island per host) in COMMAND");
    cmd->add_option("--probe", o->probe,
                    "shell command that succeeds when {host} is alive and reachable");
    add_number(*cmd, "--probe-timeout", o->probe_timeout_s, {.min = 0.1, .max = 3600},
               "seconds a probe may take; one still running then is ended and its host "
               "counts as down");
    add_number(*cmd, "--min-hosts", o->min_hosts, {.min = 1, .max = 4096},
               "hosts needed to start (at most those of --hosts)");
    add_number(*cmd, "--host-wait", o->host_wait_s, {.min = 0, .max = kWeekSeconds},
               "seconds to wait for --min-hosts hosts to answer before giving up (0: no limit; "
               "the wait is reported each minute)");
    add_number(*cmd, "--slots", o->slots, {.min = 1, .max = 4096},
               "ranks per host in {hosts} and {np}");
    add_number(*cmd, "--poll", o->poll_s, {.min = 0, .max = 3600, .min_open = true},
               "seconds between probes of hosts that are down");
    add_number(*cmd, "--stall", o->stall_s, {.min = 0, .max = kWeekSeconds},
               "seconds without a new record in the command's --log before the job is "
               "stopped and started again (0: never)");
    add_number(*cmd, "--grace", o->grace_s, {.min = 1, .max = 3600},
               "seconds the islands alive get to keep their round's progress when a rank "
               "dies (Open MPI's odls_base_sigkill_timeout, unless set)");
    cmd->add_option("command", o->command,
                    "the job, e.g. mpirun -H {hosts} -np {np} diloco train ... --save DIR")
        ->required();
    cmd->positionals_at_end();
    cmd->callback([o] { Supervisor(*o).run(); });
}

}  // namespace diloco
