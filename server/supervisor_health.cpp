// The master's use of the shared table (worker_slots.hpp): its health checks (hung
// workers, --limit-max-requests recycling with the successor ready first) and the
// SIGUSR1 stats line over all workers.
#include "asgi/log.hpp"
#include "server/supervisor_state.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <string>
#include <utility>

namespace narwhal::server::detail {

// A worker reported ready. A successor takes its position: the worker it replaces stops
// accepting and drains now, while the successor already accepts.
void Supervisor::on_ready(Slot& slot, bool successor) {
    if (!successor) {
        slot.added = false;
        log::info("Worker process [{}] is ready", slot.process->pid());
        return;
    }
    pid_t new_pid = slot.successor->pid();
    pid_t old_pid = slot.process ? slot.process->pid() : 0;
    log::info("Worker process [{}] is ready", new_pid);
    if (slot.process) {
        log::info("Worker process [{}] replaced by [{}]: draining it", old_pid, new_pid);
        slot.process->signal(SIGTERM);
        retiring_.push_back({std::move(slot.process), slot.row});
    }
    slot.process = std::move(slot.successor);
    slot.row = slot.successor_row;
    slot.respawn_at.reset();
    if (std::exchange(slot.successor_for_roll, false))
        on_roll_ready(old_pid, new_pid);
}

void Supervisor::check_health(Clock::time_point now) {
    int64_t now_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
    for (const HealthAction& action : health_.check(table_->snapshot(), now_ns))
        on_health_action(action);
}

void Supervisor::on_health_action(const HealthAction& a) {
    // Only a process of ours, still in the row the action is about (never a reused pid).
    auto owns = [&](const std::unique_ptr<WorkerProcess>& p, std::size_t row) {
        return p && p->pid() == a.pid && row == a.slot;
    };
    Slot* position = nullptr;
    WorkerProcess* process = nullptr;
    for (Slot& slot : slots_) {
        if (owns(slot.process, slot.row))
            process = slot.process.get(), position = &slot;
        else if (owns(slot.successor, slot.successor_row))
            process = slot.successor.get();
    }
    for (Worker& w : retiring_)
        if (owns(w.process, w.row))
            process = w.process.get();
    if (!process)
        return;
    switch (a.kind) {
    case HealthAction::Kind::report_hung:
        // The worker's own watchdog logged the blocked loop's stack before this.
        log::error("Worker process [{}] is hung: its event loop {} has not turned for {:.1f} s "
                   "(--timeout-worker-healthcheck {}); stopping it",
                   a.pid, a.loop, a.blocked_ns / 1e9, settings_.timeout_worker_healthcheck);
        break;
    case HealthAction::Kind::report_start_timeout: {
        std::string why =
            fmt::format("did not become ready within {} s", settings_.timeout_worker_startup);
        log::error("Worker process [{}] {}: still starting after {:.1f} s "
                   "(--timeout-worker-startup); stopping it",
                   a.pid, why, a.starting_ns / 1e9);
        start_timeouts_[a.pid] = std::move(why);
        break;
    }
    case HealthAction::Kind::terminate:
        terminated_.insert(a.pid);
        process->signal(SIGTERM);
        break;
    case HealthAction::Kind::kill:
        log::error("Worker process [{}] did not stop after SIGTERM: killing it", a.pid);
        process->signal(SIGKILL);
        break;
    case HealthAction::Kind::replace:
        if (!position || position->successor)
            break;
        log::info("Worker process [{}] served {} requests (--limit-max-requests {}): starting "
                  "its replacement",
                  a.pid, a.requests, a.limit);
        position->successor = start_worker(position->successor_row);
        break;
    }
}

void Supervisor::log_stats() {
    std::string fields = stats_report_fields(aggregate_stats(table_->snapshot(), retired_counters_),
                                             health_.counts());
    fields = fmt::format("\"event\": \"workers_stats\", \"workers_target\": {}, {}", slots_.size(),
                         fields);
    log::event(log::Level::info, fmt::format("narwhal workers stats: {{{}}}", fields), fields);
}

std::string Supervisor::render_metrics() const {
    auto slots = table_->snapshot();
    StatsReport report = aggregate_stats(slots, retired_counters_);
    Metrics total;
    retired_metrics_.add_to(total, false);
    for (const WorkerSnapshot& w : slots)
        if (w.state != WorkerState::stopped)
            (*table_)[w.index].metrics.add_to(total, true);
    MetricsSample sample;
    sample.counters = report.total;
    sample.metrics = &total;
    sample.interpreters = static_cast<std::size_t>(std::max(1, settings_.interpreters));
    sample.master = true;
    for (const WorkerStats& w : report.workers)
        sample.workers.push_back({w.slot, w.pid, w.state, w.counters});
    sample.restarts = restarts_;
    const WorkerHealth::Counts& counts = health_.counts();
    sample.restarts.healthcheck = counts.hung;
    sample.restarts.max_requests = counts.recycled;
    sample.restarts.startup_timeout = counts.start_timeouts;
    sample.start_time_seconds = process_start_time();
    return server::render_metrics(sample);
}

// The master reaped the row's process: its counters join the retired ones.
void Supervisor::release_row(std::size_t row) {
    retire(retired_counters_, (*table_)[row].snapshot(row).counters);
    (*table_)[row].metrics.add_to(retired_metrics_, false);
    table_->release(row);
}

}  // namespace narwhal::server::detail
