// The native health paths (--health-live-path, --health-ready-path): which request target
// is a probe, and the answer, decided by C++ from what the worker knows without its event
// loops - so a probe is answered while every loop is stuck, and takes no admission slot.
//
//  - live: every event loop of this worker turned within --timeout-worker-healthcheck
//    (the threshold the master of --workers replaces a worker by; a balancer asks one
//    process, which answers for itself).
//  - ready: live, not draining (a stop signal came), and no interpreter's admission is
//    full (a request now would be refused with 503).
//
// The body is JSON with the detail (pid, draining, each interpreter's last beat age,
// requests in flight and queued); the status, 200 or 503, is what a balancer reads.
#pragma once

#include "asgi/loop_monitor.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace narwhal::server {

struct ServerContext;

class HealthPaths {
public:
    enum class Probe : uint8_t { none, live, ready };

    // `timeout_seconds` 0: loops are not judged (always live).
    HealthPaths(std::string live_path, std::string ready_path, double timeout_seconds);

    // Which probe the request target is: its path must equal a configured one (the query
    // is ignored).
    Probe match(std::string_view target) const;

    // One per interpreter, in order; set before the first connection. A loop that has not
    // beaten yet (no heartbeat runs with the watchdog off in a single process) is not
    // judged.
    void set_loops(std::vector<const asgi::LoopMonitor*> loops) { loops_ = std::move(loops); }

    struct Answer {
        int status = 200;
        std::string body;  // JSON
    };
    Answer answer(Probe probe, const ServerContext& ctx, int64_t now_ns) const;

private:
    std::string live_path_;
    std::string ready_path_;
    int64_t timeout_ns_;
    std::vector<const asgi::LoopMonitor*> loops_;
};

}  // namespace narwhal::server
