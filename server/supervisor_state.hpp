// The master process's state, shared by the files that implement it: supervisor.cpp
// (binding, forking, signals, exits, stopping) and supervisor_health.cpp (the shared
// table: hung workers, recycling, the stats line). Only run_supervisor uses it.
#pragma once

#include "config/settings.hpp"
#include "server/respawn_backoff.hpp"
#include "server/supervisor.hpp"
#include "server/worker_health.hpp"
#include "server/worker_process.hpp"
#include "server/worker_slots.hpp"

#include <chrono>
#include <csignal>
#include <cstddef>
#include <memory>
#include <optional>
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
// (--limit-max-requests: new before old), and its respawn state.
struct Slot {
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

class Supervisor {
public:
    Supervisor(const config::Settings& settings, const WorkerMain& worker_main);
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
    void release_row(std::size_t row);
    void on_signal();
    void on_child_exit(pid_t pid, int status);
    void begin_stop(const char* why, int exit_status);
    void kill_all(int sig);
    void respawn_due(Clock::time_point now);
    int poll_timeout_ms(Clock::time_point now) const;
    std::size_t running() const;

    const config::Settings& settings_;
    const WorkerMain& worker_main_;
    config::Settings worker_settings_;
    int listen_fd_ = -1;
    int signal_fd_ = -1;
    sigset_t old_mask_{};
    std::vector<Slot> slots_;
    std::unique_ptr<WorkerSlots> table_;  // shared with every worker: made before the forks
    std::vector<Worker> retiring_;        // replaced workers, draining
    WorkerHealth health_;
    WorkerCounters retired_counters_;  // of the workers already reaped, for SIGUSR1
    Clock::duration check_period_;
    Clock::time_point next_check_;
    bool stopping_ = false;
    int exit_status_ = 0;
    Clock::time_point stop_deadline_;
};

}  // namespace narwhal::server::detail
