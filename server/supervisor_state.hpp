// The master process's state, shared by the files that implement it: supervisor.cpp
// (binding, forking, signals, exits, stopping), supervisor_health.cpp (the shared
// table: hung workers, recycling, the stats line) and supervisor_operator.cpp (SIGHUP's
// rolling restart, SIGTTIN/SIGTTOU). Only run_supervisor uses it.
#pragma once

#include "config/settings.hpp"
#include "server/metrics.hpp"
#include "server/metrics_exposition.hpp"
#include "server/metrics_listener.hpp"
#include "server/pubsub_bus_directory.hpp"
#include "server/reloader.hpp"
#include "server/respawn_backoff.hpp"
#include "server/rolling_restart.hpp"
#include "server/supervisor.hpp"
#include "server/worker_health.hpp"
#include "server/worker_process.hpp"
#include "server/worker_slots.hpp"

#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <sys/types.h>
#include <vector>

namespace narwhal::server::detail {

using Clock = std::chrono::steady_clock;

// A worker process with its row in the shared table (worker_slots.hpp).
struct Worker {
    std::unique_ptr<WorkerProcess> process;
    std::size_t row = 0;
};

// One worker position: the process in it (if any), the replacement being started for it
// (--limit-max-requests and SIGHUP: new before old), and its respawn state. There are as
// many positions as the master's target number of workers.
struct Slot {
    RollingRestart::Id id = 0;  // stable while positions come and go (SIGTTIN, SIGTTOU)
    // Added by the operator (SIGTTIN, a larger `workers` on SIGHUP) and not ready yet: a
    // start-up failure removes the position again instead of stopping the master.
    bool added = false;
    // The successor is a rolling restart's step, not a --limit-max-requests replacement.
    bool successor_for_roll = false;
    std::unique_ptr<WorkerProcess> process;
    std::size_t row = 0;
    std::unique_ptr<WorkerProcess> successor;
    std::size_t successor_row = 0;
    RespawnBackoff backoff;
    std::optional<Clock::time_point> respawn_at;
};

// Rows of the shared table per position: the worker, its starting successor, and the
// worker it replaced while that one drains.
constexpr std::size_t rows_per_position = 3;

// Positions the master can grow to (SIGTTIN, `workers` raised in the config file): the
// shared table cannot grow after the first fork, so it is made for this many at start.
// At least 64 (64 x 3 rows of a few hundred bytes: tens of KiB, read a few times a
// second), and 4x the starting count for a master started with many workers.
constexpr std::size_t min_position_capacity = 64;
constexpr std::size_t position_capacity_factor = 4;

// Where the rolling restart's step under way is.
enum class RollPhase {
    none,      // no step under way
    waiting,   // the position's --limit-max-requests successor goes first
    starting,  // the replacement is forked, not ready yet
    draining,  // the replacement serves; the old worker is finishing its requests
};

class Supervisor {
public:
    Supervisor(const config::Settings& settings, const WorkerMain& worker_main,
               const SettingsReader& reread);
    ~Supervisor();
    int run();

private:
    bool bind();
    std::unique_ptr<WorkerProcess> start_worker(std::size_t& row);
    void spawn(Slot& slot);
    void check_health(Clock::time_point now);
    void on_health_action(const HealthAction& action);
    void on_ready(Slot& slot, bool successor);
    void log_stats();
    // --metrics-bind: the exposition over every worker, the reaped ones included.
    std::string render_metrics() const;
    void release_row(std::size_t row);
    void on_signal();
    void on_child_exit(pid_t pid, int status);
    void on_successor_failed(Slot& slot, pid_t pid, const std::string& how, int code);
    void begin_stop(const char* why, int exit_status);
    void kill_all(int sig);
    void respawn_due(Clock::time_point now);
    int poll_timeout_ms(Clock::time_point now) const;
    std::size_t running() const;
    void apply(const config::Settings& settings);

    // supervisor_operator.cpp: SIGHUP, SIGTTIN, SIGTTOU.
    void on_hangup();
    void add_position(const char* why);
    void remove_position(const char* why);
    void set_target(std::size_t target, const char* why);
    void advance_roll();
    void on_roll_ready(pid_t old_pid, pid_t new_pid);
    void on_roll_failed(pid_t pid, const std::string& how);
    void on_roll_drained(pid_t pid);
    void end_roll_step();
    void log_roll_done();
    bool on_added_failed(Slot& slot, pid_t pid, const std::string& how);
    Slot* position(RollingRestart::Id id);
    // systemd (supervisor_systemd.cpp): READY=1 once every first worker is ready, READY=1
    // again when a SIGHUP's roll is over, WATCHDOG=1 while every ready worker's loops turn.
    void notify_systemd(Clock::time_point now);
    int systemd_timeout_ms(Clock::time_point now) const;

    // supervisor_reload.cpp: --reload.
    bool start_reloader();
    void reload_due(Clock::time_point now);
    bool on_reload_start_failed(pid_t pid, const std::string& how);

    config::Settings settings_;  // as last loaded (start, SIGHUP); listener keys as bound
    const WorkerMain& worker_main_;
    const SettingsReader& reread_;
    config::Settings worker_settings_;
    uint16_t bound_port_ = 0;
    bool reuse_port_ = false;
    int listen_fd_ = -1;
    int signal_fd_ = -1;
    sigset_t old_mask_{};
    std::vector<Slot> slots_;  // one per position: their count is the target
    std::size_t max_positions_ = 0;
    RollingRestart::Id next_id_ = 1;
    RollingRestart roll_;
    RollPhase roll_phase_ = RollPhase::none;
    pid_t roll_draining_pid_ = 0;         // the old worker of the step under way, draining
    std::unique_ptr<WorkerSlots> table_;  // shared with every worker: made before the forks
    // The worker bus's sockets (server/pubsub_bus.hpp): made before the forks, removed
    // when the master exits; null when it could not be made.
    std::unique_ptr<PubSubBusDirectory> bus_dir_;
    std::vector<Worker> retiring_;  // replaced workers, draining
    WorkerHealth health_;
    WorkerCounters retired_counters_;  // of the workers already reaped, for SIGUSR1
    // --metrics-bind, served from this loop; the reaped workers' observations (summed when
    // their rows are released, so no counter goes backwards) and why workers were replaced.
    std::unique_ptr<MetricsListener> metrics_;
    std::unique_ptr<Reloader> reloader_;  // --reload: the watched trees, the debounce
    Metrics retired_metrics_;
    WorkerRestarts restarts_;
    std::set<pid_t> terminated_;  // stopped by the health check, until reaped
    // Workers stopped for not becoming ready in time, until reaped: their exit is a
    // start-up failure, told as "did not become ready within N s, then <signal>".
    std::map<pid_t, std::string> start_timeouts_;
    Clock::duration check_period_;
    Clock::time_point next_check_;
    bool stopping_ = false;
    int exit_status_ = 0;
    Clock::time_point stop_deadline_;
    std::string listen_on_;  // the listener's description, for STATUS=
    bool systemd_ready_ = false;
    bool systemd_reloading_ = false;
    Clock::time_point systemd_watchdog_at_{};
};

}  // namespace narwhal::server::detail
