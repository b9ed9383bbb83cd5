// --reload: the master watches the source trees (server/reloader.hpp) and, once a burst
// of matching changes has settled, replaces its workers through SIGHUP's rolling restart
// without reading the configuration again. A new worker that fails to start (a syntax
// error, an import error) stops the roll with the old worker still serving; the next
// change tries again.
#include "asgi/log.hpp"
#include "server/supervisor_state.hpp"

#include <cstdlib>
#include <system_error>
#include <vector>

namespace narwhal::server::detail {

// Before the first fork: the inotify descriptor is then one of those each worker closes.
bool Supervisor::start_reloader() {
    try {
        reloader_ = std::make_unique<Reloader>(settings_);
    } catch (const std::system_error& e) {
        log::error("--reload: {}", e.what());
        return false;
    }
    // A module rewritten within the same second at the same size has the mtime and size
    // its cached bytecode was checked against: a new worker would import the old code
    // from __pycache__. Without bytecode files every import compiles the source; set
    // even over an empty value, which Python reads as unset. (The master is
    // single-threaded here; the workers inherit its environment.)
    ::setenv("PYTHONDONTWRITEBYTECODE", "1", 1);
    return true;
}

// The debounce is over: the change is logged as uvicorn logs it, then every worker is
// replaced, one at a time, new before old. A position left empty because its worker
// failed to start (under --reload that waits for a change instead of stopping the
// master) gets a worker at once.
void Supervisor::reload_due(Clock::time_point now) {
    if (!reloader_)
        return;
    auto names = reloader_->take_due(now);
    if (!names)
        return;
    log::warning("WatchFiles detected changes in {}. Reloading...", *names);
    std::vector<RollingRestart::Id> ids;
    for (Slot& slot : slots_) {
        if (slot.process)
            ids.push_back(slot.id);
        else if (!slot.successor && !slot.respawn_at)
            spawn(slot);
    }
    if (ids.empty())
        return;
    if (roll_.request(ids) == RollingRestart::Request::started)
        log::info("Rolling restart of {} workers: one at a time, new before old", ids.size());
    else
        log::info("Rolling restart under way: it starts over after its current step");
}

// A worker that failed to start in a position with no other worker: without --reload the
// master stops (the next one would fail the same way); with it, the developer is about to
// fix the code, so the master waits for the next change. False without --reload.
bool Supervisor::on_reload_start_failed(pid_t pid, const std::string& how) {
    if (!reloader_)
        return false;
    log::error("Worker process [{}] failed during start-up ({}): waiting for a change to try "
               "again",
               pid, how);
    return true;
}

}  // namespace narwhal::server::detail
