// The order of a SIGHUP rolling restart, as a policy with no processes of its own: which
// worker position to replace next, and what a SIGHUP during a roll does. The master
// carries each step out (fork the replacement, wait until it is ready, drain the old
// worker, wait until it has exited) and tells this class when the step is over; the unit
// tests do the same with made-up positions.
//
// One step at a time, so the master runs at most one worker more than its target (the
// memory of one more interpreter, not of a second set).
//
// A SIGHUP during a roll coalesces: the step under way finishes, then the roll starts
// over with every position of that moment (those already replaced too: they were started
// before the latest change on disk). Any number of SIGHUPs during one step make one new
// roll.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

namespace narwhal::server {

class RollingRestart {
public:
    using Id = std::uint64_t;  // a worker position's id, stable while positions come and go

    enum class Request {
        started,   // no roll was under way: this one begins
        restarts,  // a roll was under way: it starts over after its current step
    };
    // A SIGHUP, with the positions of the moment in the order to replace them.
    Request request(std::vector<Id> positions);

    bool active() const { return current_ || !pending_.empty() || queued_; }
    // The position whose step is under way.
    std::optional<Id> current() const { return current_; }
    // Begins the next step when none is under way and the roll has one left; returns the
    // position to replace. Nothing while a step is under way or when the roll is over.
    std::optional<Id> next_step();
    // The step under way is over (its old worker exited, or it had none). Returns true when
    // that ended the roll (no position left, no SIGHUP waiting).
    bool step_done();
    // The position is gone (SIGTTOU): it leaves the roll; its step, if under way, is over.
    // Returns true when that ended a roll under way.
    bool forget(Id position);
    // The step's replacement failed to start: the roll stops here. A SIGHUP that came
    // during the failed step still gets its own roll (the operator may have fixed what
    // broke): returns true when one begins.
    bool abort();

    // For the log: the step under way (or last begun) as "step/total", 1-based.
    std::size_t step() const { return done_ + (current_ ? 1 : 0); }
    std::size_t total() const { return total_; }

private:
    bool finish_step();

    std::deque<Id> pending_;
    std::optional<Id> current_;
    std::optional<std::vector<Id>> queued_;  // a SIGHUP during the step under way
    std::size_t done_ = 0;
    std::size_t total_ = 0;
};

}  // namespace narwhal::server
