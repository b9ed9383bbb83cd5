// What the master does about its workers, decided from their slots (worker_slots.hpp):
// a policy with no processes, signals or clocks of its own. The master takes a snapshot
// of the slots, calls check() with its own "now", and carries out the actions it gets
// back; the unit tests do the same with made-up slots and times.
//
// Hung workers (--timeout-worker-healthcheck): a ready or draining worker one of whose
// loops last beat longer ago than the timeout (strictly longer: a beat exactly `timeout`
// old is still healthy) is reported, then sent SIGTERM; if it is still there `kill_grace`
// later, SIGKILL. Once per worker generation. The worker's own watchdog has long since
// logged the blocked loop's stack (its threshold is far below this timeout), so the
// master's report only has to name the worker, the loop and how long it has been stuck.
// A loop that never beat (still starting) or has ended (0 in its slot) is not judged:
// start-up has its own limit, below.
//
// Start-up bound (--timeout-worker-startup): a worker still `starting` (importing the
// app, running its lifespan startup) longer than the bound after its fork (strictly
// longer, as above) is reported, then sent SIGTERM, then SIGKILL `kill_grace` later, as a
// hung one. The master then treats its exit as a failure to start, in whatever context
// the worker was started (the master's start, a rolling restart, SIGTTIN, recycling).
//
// Recycling (--limit-max-requests N, --limit-max-requests-jitter J): each worker
// generation gets its own limit, N plus a jitter drawn once, uniformly in [0, J] (as
// gunicorn's max_requests_jitter and uvicorn's --limit-max-requests-jitter), so workers
// started together do not all restart together. A ready worker that has served its
// limit gets one `replace` action: the master starts a new worker first and drains the
// old one when the new one is ready, so no request fails. When that successor fails to
// start (replace_failed), the old worker keeps serving and gets another `replace` after a
// back-off: 10 s, doubling up to 5 minutes.
#pragma once

#include "config/settings.hpp"
#include "server/worker_slots.hpp"

#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace narwhal::server {

struct HealthSettings {
    int64_t healthcheck_timeout_ns = 0;  // 0: hung loops are not acted on
    int64_t startup_timeout_ns = 0;      // 0: a starting worker is waited for forever
    int64_t kill_grace_ns = 0;           // SIGTERM to SIGKILL
    uint64_t max_requests = 0;           // 0: no limit
    uint64_t max_requests_jitter = 0;

    // From the configuration. The grace is one more health-check timeout: a loop blocked
    // that long will not drain its requests, so waiting the graceful-shutdown timeout would
    // only keep a dead worker's connections hanging; one more period lets a loop that was
    // about to recover shut down cleanly.
    static HealthSettings from(const config::Settings& settings);
};

struct HealthAction {
    enum class Kind {
        report_hung,           // log: worker `pid`, loop `loop` has not turned for `blocked_ns`
        report_start_timeout,  // log: worker `pid` is still starting after `starting_ns`
        terminate,             // send SIGTERM to `pid`
        kill,                  // send SIGKILL to `pid`: it outlived the grace after SIGTERM
        replace,  // `pid` served `requests` of its `limit`: start a new worker, then drain it
    };
    Kind kind = Kind::report_hung;
    std::size_t slot = 0;
    uint64_t generation = 0;
    int32_t pid = 0;
    std::size_t loop = 0;     // report_hung: the loop with the oldest beat
    int64_t blocked_ns = 0;   // report_hung: since that beat
    int64_t starting_ns = 0;  // report_start_timeout: since its fork
    uint64_t requests = 0;    // replace
    uint64_t limit = 0;       // replace
};

// A worker's request limit: `max_requests` plus a uniform draw in [0, jitter]; 0 when
// there is no limit. Also what a single process (no --workers) would use.
uint64_t draw_request_limit(uint64_t max_requests, uint64_t jitter, std::mt19937_64& random);

class WorkerHealth {
public:
    // `seed` fixes the jitter draws (tests); the default seeds from std::random_device.
    WorkerHealth(HealthSettings settings, std::size_t capacity);
    WorkerHealth(HealthSettings settings, std::size_t capacity, uint64_t seed);

    // One pass over the slots (as WorkerSlots::snapshot() gives them; slot i at index i).
    // Actions come in the order to carry them out: a report before its SIGTERM.
    std::vector<HealthAction> check(std::span<const WorkerSnapshot> slots, int64_t now_ns);

    // New settings (SIGHUP): the hung-loop timeout and grace apply at once; request limits
    // are drawn with them for the worker generations seen from now on.
    void configure(HealthSettings settings) { settings_ = settings; }

    // The request limit drawn for the generation now in `slot` (0: none, or not seen yet).
    uint64_t request_limit(std::size_t slot) const;

    // The successor started for the `replace` of the worker in `slot` (its `generation`)
    // failed to start. That worker keeps serving; it gets another `replace` once the
    // returned delay has passed after `now_ns`, doubling with each failure.
    int64_t replace_failed(std::size_t slot, uint64_t generation, int64_t now_ns);
    // First and longest wait before a failed replacement is tried again. 10 s: the
    // respawn backoff's cap, a successor that failed will likely fail again and the old
    // worker still serves, so there is no hurry; 5 minutes: a broken deploy is retried a
    // dozen times an hour, each try costing one fork, one import and at most a start-up
    // timeout, while a fixed one is picked up soon enough.
    static constexpr int64_t replace_retry_first_ns = 10'000'000'000;
    static constexpr int64_t replace_retry_cap_ns = 300'000'000'000;

    struct Counts {
        uint64_t hung = 0;            // workers found hung (each got SIGTERM)
        uint64_t killed = 0;          // of the hung and start-up timed out, needed SIGKILL
        uint64_t recycled = 0;        // workers that reached their request limit
        uint64_t start_timeouts = 0;  // workers not ready within the start-up bound
    };
    const Counts& counts() const { return counts_; }

private:
    // What the policy remembers about the generation in one slot.
    struct Record {
        uint64_t generation = 0;
        uint64_t limit = 0;
        bool replace_sent = false;
        uint32_t replace_failures = 0;  // successors that failed to start
        int64_t replace_retry_ns = 0;   // no `replace` before this
        bool terminated = false;
        int64_t terminated_ns = 0;
        bool killed = false;
    };
    Record& record_for(const WorkerSnapshot& slot);
    void check_kill(const WorkerSnapshot& slot, Record& r, int64_t now_ns,
                    std::vector<HealthAction>& out);
    void check_startup(const WorkerSnapshot& slot, Record& r, int64_t now_ns,
                       std::vector<HealthAction>& out);
    void check_hung(const WorkerSnapshot& slot, Record& r, int64_t now_ns,
                    std::vector<HealthAction>& out);
    void check_limit(const WorkerSnapshot& slot, Record& r, int64_t now_ns,
                     std::vector<HealthAction>& out);
    // A worker judged unfit: `report`, then SIGTERM; check_kill follows with SIGKILL
    // if it outlives the grace counted from `now_ns`.
    void terminate(const HealthAction& report, const WorkerSnapshot& slot, Record& r,
                   int64_t now_ns, std::vector<HealthAction>& out);

    HealthSettings settings_;
    std::vector<Record> records_;
    std::mt19937_64 random_;
    Counts counts_;
};

// --- SIGUSR1: stats over workers ------------------------------------------------

struct WorkerStats {
    std::size_t slot = 0;
    int32_t pid = 0;
    uint64_t generation = 0;
    WorkerState state = WorkerState::stopped;
    WorkerCounters counters;
};

struct StatsReport {
    // Sums since the master started: the running workers' counters plus those of the
    // workers already gone (so `requests` does not drop when a worker is recycled);
    // the gauges (in_flight, queued, connections) only of the running ones;
    // loop_lag_max_us is the worst of all.
    WorkerCounters total;
    std::vector<WorkerStats> workers;  // the running ones
};

// Every slot in use (not stopped), in slot order, and their total on top of `retired`.
StatsReport aggregate_stats(std::span<const WorkerSnapshot> slots,
                            const WorkerCounters& retired = {});
// `into` += `worker`: counters and gauges add up, the worst loop lag wins.
void accumulate(WorkerCounters& into, const WorkerCounters& worker);
// For the master, when it releases a reaped worker's slot: keeps the worker's counters
// (not its gauges, which ended with it) in the master's running total of retired ones.
void retire(WorkerCounters& retired, const WorkerCounters& worker);

// The stats line's JSON fields for one set of counters, in the order and with the names
// of a single process's "narwhal stats" line (requests, shed, ..., abandoned).
std::string stats_fields(const WorkerCounters& counters);
// The master's line: the total's fields, what the health policy did (workers_hung,
// workers_killed, workers_recycled, workers_start_timeouts), then "workers": [{"pid": .., "state":
// .., ...}].
std::string stats_report_fields(const StatsReport& report, const WorkerHealth::Counts& counts);

}  // namespace narwhal::server
