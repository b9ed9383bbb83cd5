// The master's side of systemd's Type=notify and WatchdogSec (server/systemd.hpp): what
// it tells the manager, decided once per turn of its poll loop from the positions and the
// shared table.
#include "server/supervisor_state.hpp"
#include "server/systemd.hpp"
#include "server/systemd_watchdog.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>

namespace narwhal::server::detail {

void Supervisor::notify_systemd(Clock::time_point now) {
    if (!systemd::notifying())
        return;
    // Ready when every position's first worker is: the service then has the capacity it
    // was started for (a worker failing to start stops the master before that).
    bool all_ready = std::all_of(slots_.begin(), slots_.end(), [](const Slot& slot) {
        return slot.process && slot.process->ready();
    });
    std::string status = fmt::format("{} workers serving on {}", slots_.size(), listen_on_);
    if (!stopping_ && !systemd_ready_ && all_ready) {
        systemd_ready_ = true;
        systemd::ready(status);
    }
    // A SIGHUP's reload is over when its roll is (done, aborted, or never started because
    // the configuration did not load): READY=1 again, whatever the outcome.
    if (!stopping_ && systemd_reloading_ && systemd_ready_ && !roll_.active()) {
        systemd_reloading_ = false;
        systemd::ready(status);
    }
    auto period = systemd::watchdog_period();
    if (period.count() <= 0 || now < systemd_watchdog_at_)
        return;
    systemd_watchdog_at_ = now + period;
    int64_t now_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
    auto timeout_ns = static_cast<int64_t>(settings_.timeout_worker_healthcheck * 1e9);
    if (systemd::workers_turning(table_->snapshot(), now_ns, timeout_ns))
        systemd::watchdog();
}

int Supervisor::systemd_timeout_ms(Clock::time_point now) const {
    if (systemd::watchdog_period().count() <= 0)
        return -1;
    auto ms = std::chrono::ceil<std::chrono::milliseconds>(systemd_watchdog_at_ - now).count();
    return static_cast<int>(std::clamp<int64_t>(ms, 0, 60'000));
}

}  // namespace narwhal::server::detail
