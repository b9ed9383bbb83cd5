// systemd's WatchdogSec fed only while the server really serves: WATCHDOG=1 goes out
// every half interval while every event loop has turned within
// --timeout-worker-healthcheck (the rule of the live health path and of the master's
// hung-worker check), and stops while one is stuck, so that systemd restarts a server
// whose loops no longer turn even when its threads and its master still run.
#pragma once

#include "asgi/loop_monitor.hpp"
#include "server/worker_slots.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

namespace narwhal::server::systemd {

// A loop that has not beaten yet or has ended (beat 0) is not judged, nor is anything
// with `timeout_ns` 0 (--timeout-worker-healthcheck 0).
bool loops_turning(std::span<const asgi::LoopMonitor* const> loops, int64_t now_ns,
                   int64_t timeout_ns);
// The master's view: every loop of every ready worker in the shared table.
bool workers_turning(std::span<const WorkerSnapshot> workers, int64_t now_ns, int64_t timeout_ns);

// A single process: a thread that feeds the watchdog from the loops' heartbeats. (The
// master of --workers feeds it from its own poll loop.) Nothing when the watchdog is off.
class WatchdogFeeder {
public:
    WatchdogFeeder(std::vector<const asgi::LoopMonitor*> loops, double timeout_seconds);
    ~WatchdogFeeder();
    WatchdogFeeder(const WatchdogFeeder&) = delete;
    WatchdogFeeder& operator=(const WatchdogFeeder&) = delete;

private:
    void run(std::chrono::microseconds period);

    std::vector<const asgi::LoopMonitor*> loops_;
    int64_t timeout_ns_;
    std::mutex mutex_;
    std::condition_variable wake_;
    bool stop_ = false;
    std::thread thread_;
};

}  // namespace narwhal::server::systemd
