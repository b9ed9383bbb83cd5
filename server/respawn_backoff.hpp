// How long the master waits before it replaces a worker that died: doubling delays for
// a worker that keeps dying soon after start-up, so a crashing app cannot make the
// master fork in a tight loop, and no wait for one that had a real life.
#pragma once

#include <algorithm>
#include <chrono>

namespace narwhal::server {

class RespawnBackoff {
public:
    using Duration = std::chrono::steady_clock::duration;

    // First delay 0.1 s: long enough that a crash loop costs little CPU, short enough that
    // one crash is hardly noticed. Cap 10 s: a broken worker is retried six times a minute.
    // A worker up for 60 s since it was ready was healthy: its successor starts at once.
    static constexpr Duration first = std::chrono::milliseconds(100);
    static constexpr Duration cap = std::chrono::seconds(10);
    static constexpr Duration reset_after = std::chrono::seconds(60);

    // The delay before replacing a worker that was up (ready) for `uptime`.
    Duration on_death(Duration uptime) {
        if (uptime >= reset_after)
            delay_ = Duration::zero();
        else
            delay_ = delay_ == Duration::zero() ? first : std::min(delay_ * 2, cap);
        return delay_;
    }

private:
    Duration delay_ = Duration::zero();
};

}  // namespace narwhal::server
