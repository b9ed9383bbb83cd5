// The master's answers to the operator's signals: SIGHUP (read the configuration again,
// then replace every worker, one at a time, new before old) and SIGTTIN / SIGTTOU (one
// worker more or fewer). The order of the roll is RollingRestart's; this file carries
// its steps out with the processes.
#include "asgi/log.hpp"
#include "server/settings_reload.hpp"
#include "server/supervisor_state.hpp"
#include "server/systemd.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <csignal>
#include <exception>
#include <string>
#include <utility>
#include <vector>

namespace narwhal::server::detail {

namespace {

std::string join(const std::vector<std::string>& items) {
    std::string out;
    for (const std::string& item : items)
        out += (out.empty() ? "" : ", ") + item;
    return out;
}

}  // namespace

Slot* Supervisor::position(RollingRestart::Id id) {
    auto it =
        std::find_if(slots_.begin(), slots_.end(), [id](const Slot& s) { return s.id == id; });
    return it == slots_.end() ? nullptr : &*it;
}

// SIGHUP. A configuration that no longer loads changes nothing: the workers keep serving
// with the settings they have. Otherwise the new settings take effect for every worker
// started from now on (listener keys excepted), and each running worker is replaced.
void Supervisor::on_hangup() {
    log::info("Received SIGHUP: reading the configuration again");
    // READY=1 follows from notify_systemd once the roll is over (or did not start).
    systemd::reloading("Reloading: rolling restart of the workers");
    systemd_reloading_ = true;
    config::Settings loaded;
    try {
        loaded = reread_();
    } catch (const std::exception& e) {
        log::error("Configuration not reloaded, the workers keep their settings: {}", e.what());
        return;
    }
    SettingsReload reload = reload_settings(settings_, loaded);
    for (const std::string& line : reload.need_restart)
        log::warning("Setting {} needs a full restart: the master keeps the running value", line);
    if (!reload.changed.empty())
        log::info("Settings changed for the new workers: {}", join(reload.changed));
    apply(reload.applied);

    // The positions of now: those a new `workers` target adds start with the new settings.
    std::vector<RollingRestart::Id> ids;
    for (const Slot& slot : slots_)
        ids.push_back(slot.id);
    if (reload.workers_changed) {
        int target =
            settings_.workers == config::Settings::workers_auto ? usable_cpus() : settings_.workers;
        set_target(static_cast<std::size_t>(target), "workers changed in the configuration");
        std::erase_if(ids, [this](RollingRestart::Id id) { return position(id) == nullptr; });
    }
    if (roll_.request(ids) == RollingRestart::Request::started)
        log::info("Rolling restart of {} workers: one at a time, new before old", ids.size());
    else
        log::info("Rolling restart under way: it starts over after its current step");
}

// Carries the roll on: begins its next step when none is under way. Called on every turn
// of the master's loop; the step's events (ready, exit) come through on_roll_*.
void Supervisor::advance_roll() {
    while (roll_.active()) {
        if (!roll_.current()) {
            if (!roll_.next_step())
                return;
            roll_phase_ = RollPhase::waiting;
        }
        if (roll_phase_ != RollPhase::waiting)
            return;  // its replacement is starting, or its old worker draining
        Slot* slot = position(*roll_.current());
        if (!slot) {
            end_roll_step();
            continue;
        }
        if (slot->successor)
            return;  // a --limit-max-requests replacement is starting: it goes first
        if (!slot->process) {
            // Dead, waiting for its respawn: that one starts with the new settings.
            log::info("Rolling restart {}/{}: no worker to replace (its respawn is due)",
                      roll_.step(), roll_.total());
            end_roll_step();
            continue;
        }
        log::info("Rolling restart {}/{}: starting a replacement for worker process [{}]",
                  roll_.step(), roll_.total(), slot->process->pid());
        slot->successor = start_worker(slot->successor_row);
        if (!slot->successor) {
            log::error("Rolling restart aborted at {}/{}: no replacement could be started",
                       roll_.step(), roll_.total());
            roll_phase_ = RollPhase::none;
            if (roll_.abort())
                log::info("Rolling restart: starting over for the SIGHUP received meanwhile");
            continue;
        }
        slot->successor_for_roll = true;
        roll_phase_ = RollPhase::starting;
        return;
    }
}

// The step's replacement is ready and serving; the old worker (if it was still there)
// has been told to drain. The next step waits until it has exited: at most one worker
// more than the target at any time.
void Supervisor::on_roll_ready(pid_t old_pid, pid_t new_pid) {
    if (old_pid == 0) {
        log::info("Rolling restart {}/{}: worker process [{}] took an empty position", roll_.step(),
                  roll_.total(), new_pid);
        end_roll_step();
        return;
    }
    ++restarts_.reload;
    log::info("Rolling restart {}/{}: worker process [{}] replaced by [{}], waiting for it to "
              "drain",
              roll_.step(), roll_.total(), old_pid, new_pid);
    roll_draining_pid_ = old_pid;
    roll_phase_ = RollPhase::draining;
}

void Supervisor::on_roll_drained(pid_t pid) {
    log::info("Rolling restart {}/{}: worker process [{}] has stopped", roll_.step(), roll_.total(),
              pid);
    end_roll_step();
}

// The replacement exited before it was ready (the app no longer imports, its lifespan
// startup fails, ...): the worker it was to replace keeps serving, and so do the others;
// the roll stops here. Unlike a failure at the master's start, nothing stops.
void Supervisor::on_roll_failed(pid_t pid, const std::string& how) {
    Slot* slot = roll_.current() ? position(*roll_.current()) : nullptr;
    if (slot && slot->process)
        log::error("Rolling restart aborted at {}/{}: worker process [{}] failed during start-up "
                   "({}); the running workers keep serving",
                   roll_.step(), roll_.total(), pid, how);
    else
        log::error("Rolling restart aborted at {}/{}: worker process [{}] failed during start-up "
                   "({})",
                   roll_.step(), roll_.total(), pid, how);
    if (slot && !slot->process && !slot->respawn_at)
        slot->respawn_at = Clock::now() + RespawnBackoff::cap;  // its worker died meanwhile
    roll_phase_ = RollPhase::none;
    roll_draining_pid_ = 0;
    if (roll_.abort())
        log::info("Rolling restart: starting over for the SIGHUP received meanwhile");
}

void Supervisor::end_roll_step() {
    roll_phase_ = RollPhase::none;
    roll_draining_pid_ = 0;
    if (roll_.step_done())
        log_roll_done();
}

void Supervisor::log_roll_done() {
    std::vector<std::string> pids;
    for (const Slot& slot : slots_)
        if (slot.process)
            pids.push_back(fmt::format("{}", slot.process->pid()));
    log::info("Rolling restart done: {} workers [{}]", slots_.size(), join(pids));
}

// SIGTTIN, or a larger `workers`: one more position, its worker started at once with the
// current settings. The respawn logic and the stats follow the positions.
void Supervisor::add_position(const char* why) {
    if (slots_.size() >= max_positions_) {
        log::warning("{}: already {} workers, the most this master can run (the workers' table "
                     "is sized at start)",
                     why, slots_.size());
        return;
    }
    Slot& slot = slots_.emplace_back();
    slot.id = next_id_++;
    slot.added = true;
    log::info("{}: {} workers (one more)", why, slots_.size());
    spawn(slot);
}

// SIGTTOU, or a smaller `workers`: one position fewer, never below one. Its worker drains
// as on SIGTERM and is not respawned. The last position goes, unless it is the rolling
// restart's step under way (that step is left to finish).
void Supervisor::remove_position(const char* why) {
    if (slots_.size() <= 1) {
        log::info("{}: already 1 worker, the fewest there can be", why);
        return;
    }
    auto victim = slots_.end() - 1;
    if (roll_.current() && victim->id == *roll_.current())
        --victim;
    log::info("{}: {} workers (one fewer)", why, slots_.size() - 1);
    for (auto [process, row] : {std::pair{&victim->process, victim->row},
                                std::pair{&victim->successor, victim->successor_row}}) {
        if (!*process)
            continue;
        log::info("Worker process [{}] is no longer needed: stopping it", (*process)->pid());
        (*process)->signal(SIGTERM);
        retiring_.push_back({std::move(*process), row});
    }
    RollingRestart::Id id = victim->id;
    slots_.erase(victim);
    if (roll_.forget(id))
        log_roll_done();
}

void Supervisor::set_target(std::size_t target, const char* why) {
    if (target > max_positions_) {
        log::warning("{}: {} workers asked for, {} is the most this master can run (the "
                     "workers' table is sized at start)",
                     why, target, max_positions_);
        target = max_positions_;
    }
    target = std::max<std::size_t>(target, 1);
    while (slots_.size() < target)
        add_position(why);
    while (slots_.size() > target)
        remove_position(why);
}

// A worker of a position the operator added exited before it was ready: the position
// goes again (the app likely fails for any new worker now), and the master keeps running.
// False for every other position: a start-up failure there stops the master.
bool Supervisor::on_added_failed(Slot& slot, pid_t pid, const std::string& how) {
    if (!slot.added || slots_.size() <= 1)
        return false;
    RollingRestart::Id id = slot.id;
    std::erase_if(slots_, [id](const Slot& s) { return s.id == id; });
    log::error("Worker process [{}] failed during start-up ({}): not added, {} workers", pid, how,
               slots_.size());
    if (roll_.forget(id))
        log_roll_done();
    return true;
}

}  // namespace narwhal::server::detail
