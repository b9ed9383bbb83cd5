#include "server/worker_health.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace narwhal::server {
namespace {

int64_t to_ns(double seconds) { return static_cast<int64_t>(std::llround(seconds * 1e9)); }

HealthAction action_for(const WorkerSnapshot& slot, HealthAction::Kind kind) {
    HealthAction a;
    a.kind = kind;
    a.slot = slot.index;
    a.generation = slot.generation;
    a.pid = slot.pid;
    return a;
}

}  // namespace

HealthSettings HealthSettings::from(const config::Settings& s) {
    HealthSettings h;
    h.healthcheck_timeout_ns = to_ns(s.timeout_worker_healthcheck);
    h.startup_timeout_ns = to_ns(s.timeout_worker_startup);
    h.kill_grace_ns = h.healthcheck_timeout_ns;
    h.max_requests = s.limit_max_requests;
    h.max_requests_jitter = s.limit_max_requests_jitter;
    return h;
}

uint64_t draw_request_limit(uint64_t max_requests, uint64_t jitter, std::mt19937_64& random) {
    if (max_requests == 0)
        return 0;
    if (jitter == 0)
        return max_requests;
    uint64_t extra = std::uniform_int_distribution<uint64_t>(0, jitter)(random);
    // Saturate rather than wrap: a limit past 2^64 requests is no limit either way.
    return extra > UINT64_MAX - max_requests ? UINT64_MAX : max_requests + extra;
}

WorkerHealth::WorkerHealth(HealthSettings settings, std::size_t capacity)
    : WorkerHealth(settings, capacity, std::random_device{}()) {}

WorkerHealth::WorkerHealth(HealthSettings settings, std::size_t capacity, uint64_t seed)
    : settings_(settings), records_(capacity), random_(seed) {}

uint64_t WorkerHealth::request_limit(std::size_t slot) const {
    return slot < records_.size() ? records_[slot].limit : 0;
}

WorkerHealth::Record& WorkerHealth::record_for(const WorkerSnapshot& slot) {
    if (slot.index >= records_.size())
        records_.resize(slot.index + 1);
    Record& r = records_[slot.index];
    if (r.generation != slot.generation) {
        // A new worker in this slot: forget the old one, draw its own limit once.
        r = Record{};
        r.generation = slot.generation;
        r.limit =
            draw_request_limit(settings_.max_requests, settings_.max_requests_jitter, random_);
    }
    return r;
}

std::vector<HealthAction> WorkerHealth::check(std::span<const WorkerSnapshot> slots,
                                              int64_t now_ns) {
    std::vector<HealthAction> out;
    for (const WorkerSnapshot& slot : slots) {
        if (slot.state == WorkerState::stopped || slot.generation == 0)
            continue;
        Record& r = record_for(slot);
        if (r.terminated) {
            check_kill(slot, r, now_ns, out);
            continue;
        }
        check_startup(slot, r, now_ns, out);
        check_hung(slot, r, now_ns, out);
        check_limit(slot, r, now_ns, out);
    }
    return out;
}

int64_t WorkerHealth::replace_failed(std::size_t slot, uint64_t generation, int64_t now_ns) {
    if (slot >= records_.size() || records_[slot].generation != generation)
        return 0;  // that worker is gone: nothing to try again
    Record& r = records_[slot];
    int64_t delay = replace_retry_first_ns;
    for (uint32_t i = 0; i < r.replace_failures && delay < replace_retry_cap_ns; ++i)
        delay *= 2;
    delay = std::min(delay, replace_retry_cap_ns);
    ++r.replace_failures;
    r.replace_sent = false;
    r.replace_retry_ns = now_ns + delay;
    return delay;
}

// Already told to stop (hung, or not ready in time): it gets the grace, then SIGKILL,
// whatever its loops or its start-up do now.
void WorkerHealth::check_kill(const WorkerSnapshot& slot, Record& r, int64_t now_ns,
                              std::vector<HealthAction>& out) {
    if (!r.killed && now_ns - r.terminated_ns >= settings_.kill_grace_ns) {
        r.killed = true;
        ++counts_.killed;
        out.push_back(action_for(slot, HealthAction::Kind::kill));
    }
}

void WorkerHealth::check_startup(const WorkerSnapshot& slot, Record& r, int64_t now_ns,
                                 std::vector<HealthAction>& out) {
    // Counted from the fork the master recorded: a slot without it is not judged yet.
    if (settings_.startup_timeout_ns <= 0 || slot.pid <= 0 || slot.started_ns <= 0)
        return;
    if (slot.state != WorkerState::starting)
        return;
    int64_t starting = now_ns - slot.started_ns;
    if (starting <= settings_.startup_timeout_ns)
        return;
    HealthAction report = action_for(slot, HealthAction::Kind::report_start_timeout);
    report.starting_ns = starting;
    terminate(report, slot, r, now_ns, out);
    ++counts_.start_timeouts;
}

void WorkerHealth::terminate(const HealthAction& report, const WorkerSnapshot& slot, Record& r,
                             int64_t now_ns, std::vector<HealthAction>& out) {
    out.push_back(report);
    out.push_back(action_for(slot, HealthAction::Kind::terminate));
    r.terminated = true;
    r.terminated_ns = now_ns;
}

void WorkerHealth::check_hung(const WorkerSnapshot& slot, Record& r, int64_t now_ns,
                              std::vector<HealthAction>& out) {
    if (r.terminated || settings_.healthcheck_timeout_ns <= 0 || slot.pid <= 0)
        return;
    if (slot.state != WorkerState::ready && slot.state != WorkerState::draining)
        return;
    // The loop with the oldest beat decides: one stuck loop is enough to replace the worker.
    std::size_t oldest = WorkerSnapshot::max_loops;
    for (std::size_t i = 0; i < WorkerSnapshot::max_loops; ++i)
        if (slot.heartbeat_ns[i] != 0 && (oldest == WorkerSnapshot::max_loops ||
                                          slot.heartbeat_ns[i] < slot.heartbeat_ns[oldest]))
            oldest = i;
    if (oldest == WorkerSnapshot::max_loops)
        return;
    int64_t blocked = now_ns - slot.heartbeat_ns[oldest];
    if (blocked <= settings_.healthcheck_timeout_ns)
        return;
    HealthAction report = action_for(slot, HealthAction::Kind::report_hung);
    report.loop = oldest;
    report.blocked_ns = blocked;
    terminate(report, slot, r, now_ns, out);
    ++counts_.hung;
}

void WorkerHealth::check_limit(const WorkerSnapshot& slot, Record& r, int64_t now_ns,
                               std::vector<HealthAction>& out) {
    // Only a ready worker: one that is starting has served nothing, one that is draining
    // is already on its way out, and a hung one is being replaced anyway.
    if (r.limit == 0 || r.replace_sent || r.terminated || slot.state != WorkerState::ready)
        return;
    if (slot.counters.requests < r.limit)
        return;
    if (r.replace_failures > 0 && now_ns < r.replace_retry_ns)
        return;  // its last successor failed to start: not again before the back-off
    HealthAction a = action_for(slot, HealthAction::Kind::replace);
    a.requests = slot.counters.requests;
    a.limit = r.limit;
    out.push_back(a);
    r.replace_sent = true;
    if (r.replace_failures == 0)
        ++counts_.recycled;  // once per worker, however many tries its replacement takes
}

void accumulate(WorkerCounters& into, const WorkerCounters& w) {
    into.requests += w.requests;
    into.shed += w.shed;
    into.queue_timeouts += w.queue_timeouts;
    into.in_flight += w.in_flight;
    into.queued += w.queued;
    into.connections += w.connections;
    into.loop_stalls += w.loop_stalls;
    into.loop_lag_max_us = std::max(into.loop_lag_max_us, w.loop_lag_max_us);
    into.cancelled += w.cancelled;
    into.abandoned += w.abandoned;
    into.tls_handshake_failures += w.tls_handshake_failures;
    into.proxy_protocol_errors += w.proxy_protocol_errors;
    into.orphan_tasks += w.orphan_tasks;
    into.unretrieved_exceptions += w.unretrieved_exceptions;
}

void retire(WorkerCounters& retired, const WorkerCounters& w) {
    WorkerCounters counters = w;
    counters.in_flight = 0;
    counters.queued = 0;
    counters.connections = 0;
    accumulate(retired, counters);
}

StatsReport aggregate_stats(std::span<const WorkerSnapshot> slots, const WorkerCounters& retired) {
    StatsReport report;
    report.total = retired;
    report.total.in_flight = 0;
    report.total.queued = 0;
    report.total.connections = 0;
    for (const WorkerSnapshot& slot : slots) {
        if (slot.state == WorkerState::stopped)
            continue;
        report.workers.push_back(
            {slot.index, slot.pid, slot.generation, slot.state, slot.counters});
        accumulate(report.total, slot.counters);
    }
    return report;
}

std::string stats_fields(const WorkerCounters& c) {
    return fmt::format("\"requests\": {}, \"shed\": {}, \"queue_timeouts\": {}, "
                       "\"in_flight\": {}, \"queued\": {}, \"connections\": {}, "
                       "\"loop_stalls\": {}, \"loop_lag_max_ms\": {:.1f}, \"cancelled\": {}, "
                       "\"abandoned\": {}, \"tls_handshake_failures\": {}, "
                       "\"proxy_protocol_errors\": {}",
                       c.requests, c.shed, c.queue_timeouts, c.in_flight, c.queued, c.connections,
                       c.loop_stalls, c.loop_lag_max_us / 1000.0, c.cancelled, c.abandoned,
                       c.tls_handshake_failures, c.proxy_protocol_errors);
}

std::string stats_report_fields(const StatsReport& report, const WorkerHealth::Counts& counts) {
    std::string out = stats_fields(report.total);
    out += fmt::format(", \"workers_hung\": {}, \"workers_killed\": {}, \"workers_recycled\": {}, "
                       "\"workers_start_timeouts\": {}",
                       counts.hung, counts.killed, counts.recycled, counts.start_timeouts);
    out += ", \"workers\": [";
    for (std::size_t i = 0; i < report.workers.size(); ++i) {
        const WorkerStats& w = report.workers[i];
        out += fmt::format(
            "{}{{\"pid\": {}, \"slot\": {}, \"generation\": {}, \"state\": \"{}\", {}}}",
            i == 0 ? "" : ", ", w.pid, w.slot, w.generation, to_string(w.state),
            stats_fields(w.counters));
    }
    out += "]";
    return out;
}

}  // namespace narwhal::server
