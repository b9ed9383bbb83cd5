// The table through which worker processes tell the master how they are: one slot per
// worker in a single MAP_SHARED | MAP_ANONYMOUS mapping that the master creates before it
// forks, so every worker inherits the same pages. A worker writes its own slot (state,
// one heartbeat per event loop, its stats counters); the master reads every slot to find
// hung workers, to recycle those that reached --limit-max-requests and to answer SIGUSR1.
//
// Why shared memory and not a pipe per worker (uvicorn pings each worker over a pipe and
// waits for the answer): a heartbeat is one store, so the worker's loops pay nothing per
// beat and the master reads all workers without a round trip; and a pipe answered by a
// helper thread says the process is alive, not that its loop turns.
//
// Rules that make the sharing safe:
//  - every field is a std::atomic that is always lock-free, hence address-free: the same
//    object works through the two processes' mappings (a lock-based atomic would keep
//    its lock in one process);
//  - no pointers inside the mapping, only values: the mapping is at the same address in
//    the master and its forked workers, but nothing here relies on that;
//  - fixed capacity, chosen when the mapping is made: the master cannot grow it after
//    the fork (a new mapping would not be shared with the running workers);
//  - one writer per field: the master writes pid, generation, started_ns and the
//    `stopped` state; the worker writes the rest of its own slot. Readers take values one
//    field at a time; a report may mix a counter from before a beat with one from after,
//    which is fine for health checks and stats.
//
// Heartbeats are CLOCK_MONOTONIC nanoseconds (asgi::LoopMonitor::now_ns, steady_clock on
// Linux): one clock for the whole machine, so the master can compare a worker's beat with
// its own now.
#pragma once

#include "asgi/stats.hpp"
#include "config/settings.hpp"
#include "server/metrics.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

namespace narwhal::server {

static_assert(std::atomic<uint64_t>::is_always_lock_free);
static_assert(std::atomic<int64_t>::is_always_lock_free);
static_assert(std::atomic<uint32_t>::is_always_lock_free);
static_assert(std::atomic<int32_t>::is_always_lock_free);

// A worker's life as the master sees it. The values are stored in the mapping.
enum class WorkerState : uint32_t {
    stopped = 0,   // free: never used, or the master reaped its process (the master writes it)
    starting = 1,  // the master forked it; it is importing the app, running lifespan startup
    ready = 2,     // serving: its loops beat and count towards the health check
    draining = 3,  // stopped accepting; finishing its requests before it exits
};
std::string_view to_string(WorkerState state);

// The counters of the stats line (server/front_end.cpp's "narwhal stats"), as plain
// values: a copy of one worker's slot, or the sum over workers.
struct WorkerCounters {
    uint64_t requests = 0;  // handed to the interpreter: also the count --limit-max-requests
                            // compares (uvicorn counts requests when they start, too)
    uint64_t shed = 0;
    uint64_t queue_timeouts = 0;
    int64_t in_flight = 0;
    int64_t queued = 0;
    int64_t connections = 0;
    uint64_t loop_stalls = 0;
    int64_t loop_lag_max_us = 0;  // the worst, not a sum, when aggregated
    uint64_t cancelled = 0;
    uint64_t abandoned = 0;
    uint64_t tls_handshake_failures = 0;
    uint64_t proxy_protocol_errors = 0;
    uint64_t orphan_tasks = 0;
    uint64_t unretrieved_exceptions = 0;
};

// The stats line's counters of one worker now: its Stats, plus the gauges the admissions
// hold (requests in flight and waiting for a slot, over all its interpreters).
WorkerCounters counters_of(const asgi::Stats& stats, int64_t in_flight, int64_t queued);

// One slot, as a copy of plain values: what the health policy and the stats report read.
struct WorkerSnapshot {
    // One loop per interpreter of a worker.
    static constexpr std::size_t max_loops = config::Settings::max_interpreters;

    std::size_t index = 0;
    int32_t pid = 0;
    uint64_t generation = 0;
    WorkerState state = WorkerState::stopped;
    // When the master forked it (CLOCK_MONOTONIC ns, the heartbeats' clock); 0: not yet.
    int64_t started_ns = 0;
    // Last beat of each loop; 0: that loop has not beaten yet, or has ended.
    int64_t heartbeat_ns[max_loops] = {};
    WorkerCounters counters;
};

// One worker's slot in the shared mapping. A cache line of its own (and its counters on
// further lines) so that two workers' beats never write the same line.
struct alignas(64) WorkerSlot {
    static constexpr std::size_t max_loops = WorkerSnapshot::max_loops;

    // --- the worker's side ---------------------------------------------------
    void set_state(WorkerState state);
    // The loop's periodic heartbeat ran at `now_ns`. Loops past max_loops are not tracked
    // (returns false): the table's size is fixed before any worker exists.
    bool beat(std::size_t loop, int64_t now_ns);
    // The loop has ended on purpose (shutdown): it no longer counts as blocked.
    void end_loop(std::size_t loop);
    // Copies the worker's counters (counters_of) into the slot.
    void publish(const WorkerCounters& counters);

    // --- read by anyone ---------------------------------------------------------
    WorkerSnapshot snapshot(std::size_t index) const;

    std::atomic<int32_t> pid{0};
    std::atomic<uint64_t> generation{0};
    std::atomic<uint32_t> state{static_cast<uint32_t>(WorkerState::stopped)};
    std::atomic<int64_t> started_ns{0};
    std::atomic<int64_t> heartbeat_ns[max_loops]{};

    std::atomic<uint64_t> requests{0};
    std::atomic<uint64_t> shed{0};
    std::atomic<uint64_t> queue_timeouts{0};
    std::atomic<int64_t> in_flight{0};
    std::atomic<int64_t> queued{0};
    std::atomic<int64_t> connections{0};
    std::atomic<uint64_t> loop_stalls{0};
    std::atomic<int64_t> loop_lag_max_us{0};
    std::atomic<uint64_t> cancelled{0};
    std::atomic<uint64_t> abandoned{0};
    std::atomic<uint64_t> tls_handshake_failures{0};
    std::atomic<uint64_t> proxy_protocol_errors{0};
    std::atomic<uint64_t> orphan_tasks{0};
    std::atomic<uint64_t> unretrieved_exceptions{0};

    // The worker's metrics observations, written in place by its I/O threads and loops
    // (not published per beat): the master's /metrics reads them here.
    Metrics metrics;
};
static_assert(std::is_trivially_destructible_v<WorkerSlot>,
              "slots are unmapped, never destroyed: they may hold no resources");

// The mapping and its slots. Made by the master before the first fork; each forked worker
// holds a copy of this object whose pages are the same shared ones.
class WorkerSlots {
public:
    // Maps `capacity` slots (at least 1), all stopped, generation 0. Throws
    // std::system_error when mmap fails. The master needs room for its workers plus the
    // replacements that run beside the workers they replace (max-requests recycling and
    // rolling restarts start the new worker before the old one drains).
    explicit WorkerSlots(std::size_t capacity);
    ~WorkerSlots();
    WorkerSlots(const WorkerSlots&) = delete;
    WorkerSlots& operator=(const WorkerSlots&) = delete;

    std::size_t capacity() const { return capacity_; }
    WorkerSlot& operator[](std::size_t index) { return slots_[index]; }
    const WorkerSlot& operator[](std::size_t index) const { return slots_[index]; }

    // --- the master's side -----------------------------------------------------
    // A stopped slot to give a new worker, or capacity() when all are in use.
    std::size_t find_free() const;
    // Prepares slot `index` for a new worker, before the fork: the next generation,
    // state starting, no pid yet, heartbeats and counters at zero. Only for a stopped
    // slot (nobody else writes it). Returns the new generation.
    uint64_t assign(std::size_t index);
    // After the fork: the worker's process id, and when it was forked (CLOCK_MONOTONIC
    // ns): the start-up bound counts from there.
    void set_pid(std::size_t index, int32_t pid, int64_t started_ns);
    // The master reaped the worker's process: the slot is free again.
    void release(std::size_t index);

    std::vector<WorkerSnapshot> snapshot() const;

private:
    std::size_t capacity_;
    std::size_t bytes_;
    WorkerSlot* slots_;
};

}  // namespace narwhal::server
