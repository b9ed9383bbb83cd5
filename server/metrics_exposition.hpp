// What /metrics says: narwhal's metric families rendered from one sample of the counters
// (asgi::Stats, as server/worker_slots.hpp's WorkerCounters) and the observations
// (server/metrics.hpp), summed over the workers (and the workers already gone) by the
// caller. The same renderer serves a single process and the master of --workers.
#pragma once

#include "server/metrics.hpp"
#include "server/worker_slots.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace narwhal::server {

// Why the master started a new worker in place of another.
struct WorkerRestarts {
    uint64_t exit = 0;             // it exited or died on its own (crash, os kill)
    uint64_t healthcheck = 0;      // a loop stuck past --timeout-worker-healthcheck
    uint64_t max_requests = 0;     // --limit-max-requests recycling
    uint64_t reload = 0;           // SIGHUP's rolling restart, one per worker replaced
    uint64_t startup_timeout = 0;  // not ready within --timeout-worker-startup
};

struct MetricsSample {
    WorkerCounters counters;           // summed; the retired workers' counters included
    const Metrics* metrics = nullptr;  // summed likewise
    std::size_t interpreters = 1;      // loops per worker: the lag histograms shown
    // Under a master: one entry per running worker (the `worker` label is its row), and the
    // restarts. A single process has neither.
    bool master = false;
    struct Worker {
        std::size_t index = 0;
        int32_t pid = 0;
        WorkerState state = WorkerState::stopped;
        WorkerCounters counters;
    };
    std::vector<Worker> workers;
    WorkerRestarts restarts;
    double start_time_seconds = 0;  // Unix time the process (the master) started
};

std::string render_metrics(const MetricsSample& sample);

// The process's start, as Unix seconds (for narwhal_process_start_time_seconds).
double process_start_time();

}  // namespace narwhal::server
