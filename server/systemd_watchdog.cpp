#include "server/systemd_watchdog.hpp"

#include "server/systemd.hpp"

namespace narwhal::server::systemd {

namespace {

bool beat_recent(int64_t beat_ns, int64_t now_ns, int64_t timeout_ns) {
    return beat_ns == 0 || timeout_ns <= 0 || now_ns - beat_ns <= timeout_ns;
}

}  // namespace

bool loops_turning(std::span<const asgi::LoopMonitor* const> loops, int64_t now_ns,
                   int64_t timeout_ns) {
    for (const asgi::LoopMonitor* loop : loops)
        if (!beat_recent(loop->last_beat_ns(), now_ns, timeout_ns))
            return false;
    return true;
}

bool workers_turning(std::span<const WorkerSnapshot> workers, int64_t now_ns, int64_t timeout_ns) {
    for (const WorkerSnapshot& w : workers) {
        if (w.state != WorkerState::ready)
            continue;  // starting (bounded by --timeout-worker-startup) or stopping
        for (int64_t beat : w.heartbeat_ns)
            if (!beat_recent(beat, now_ns, timeout_ns))
                return false;
    }
    return true;
}

WatchdogFeeder::WatchdogFeeder(std::vector<const asgi::LoopMonitor*> loops, double timeout_seconds)
    : loops_(std::move(loops)), timeout_ns_(static_cast<int64_t>(timeout_seconds * 1e9)) {
    auto period = watchdog_period();
    if (period.count() > 0)
        thread_ = std::thread([this, period] { run(period); });
}

WatchdogFeeder::~WatchdogFeeder() {
    if (!thread_.joinable())
        return;
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
    }
    wake_.notify_one();
    thread_.join();
}

void WatchdogFeeder::run(std::chrono::microseconds period) {
    std::unique_lock lock(mutex_);
    while (!stop_) {
        if (loops_turning(loops_, asgi::LoopMonitor::now_ns(), timeout_ns_))
            watchdog();
        wake_.wait_for(lock, period, [this] { return stop_; });
    }
}

}  // namespace narwhal::server::systemd
