// Several deadlines of one connection on one steady_timer. A connection has a few
// things to time at once (an HTTP wait and a request deadline; a WebSocket's slow
// consumer, shutdown drain and hard close), and one timer per deadline would cost a
// timer-queue insert and cancel for each of them on every request. Instead:
//
//  - a deadline set later than the one the timer waits for touches nothing: the timer
//    fires at the old time, finds nothing due and re-arms for what is left;
//  - only a deadline earlier than the armed one re-arms the timer at once.
//
// The owner starts the wait (so the handler can hold the owner alive) and routes the
// handler back here:
//
//     if (timer_.set(Deadline::x, when)) start_timer();
//     void start_timer() { timer_.start([self = shared_from_this()](error_code ec) {
//                                           self->on_timer(ec); }); }
//     void on_timer(error_code ec) {
//         if (!timer_.fired(ec) || closed) return;
//         timer_.expire(clock::now(), [&](Deadline d) { ... });
//         if (!closed && timer_.pending()) start_timer();
//     }
#pragma once

#include <boost/asio/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <utility>

namespace narwhal::server {

// `Slot` is an enum whose values are 0..N-1.
template <typename Slot, std::size_t N> class DeadlineTimer {
public:
    using clock = std::chrono::steady_clock;
    using time_point = clock::time_point;
    static constexpr time_point never = time_point::max();

    template <typename Executor> explicit DeadlineTimer(const Executor& ex) : timer_(ex) {
        deadlines_.fill(never);
    }

    // Sets `slot`'s deadline. True when the timer must be started now (start()): the
    // deadline is earlier than the time the timer waits for, or it waits for nothing.
    bool set(Slot slot, time_point when) {
        if (stopped_)
            return false;
        at(slot) = when;
        return when < armed_for_;
    }
    // The slot has no deadline any more. The timer is left as it is.
    void clear(Slot slot) { at(slot) = never; }
    time_point deadline(Slot slot) const { return deadlines_[index(slot)]; }
    bool is_set(Slot slot) const { return deadline(slot) != never; }

    // The earliest deadline still set.
    time_point next() const {
        time_point t = never;
        for (time_point d : deadlines_)
            t = std::min(t, d);
        return t;
    }
    // A deadline is set that the timer does not wait for yet: start() again.
    bool pending() const { return !stopped_ && next() < armed_for_; }

    // Waits for the earliest deadline; `handler(error_code)` runs when it passes (or
    // when the wait is replaced or cancelled). Replacing a pending wait cancels it.
    template <typename Handler> void start(Handler&& handler) {
        time_point when = next();
        if (when == never || stopped_)
            return;
        armed_for_ = when;
        timer_.expires_at(when);
        timer_.async_wait(std::forward<Handler>(handler));
    }

    // First thing in the handler. False when the wake is not one to act on: the wait was
    // replaced by an earlier one (still pending) or the timer was stopped.
    bool fired(const boost::system::error_code& ec) {
        if (ec == boost::asio::error::operation_aborted || stopped_)
            return false;
        armed_for_ = never;
        return true;
    }

    // Clears every deadline at or before `now` and calls `on_due(slot)` for each, in slot
    // order. `on_due` may set or clear deadlines; a slot it sets is looked at in this pass
    // only if it comes later in the order.
    template <typename OnDue> void expire(time_point now, OnDue&& on_due) {
        for (std::size_t i = 0; i < N; ++i) {
            if (deadlines_[i] <= now) {
                deadlines_[i] = never;
                on_due(static_cast<Slot>(i));
            }
        }
    }

    // For good: cancels the wait and refuses new ones (the connection is closing).
    void stop() {
        stopped_ = true;
        deadlines_.fill(never);
        timer_.cancel();
    }
    bool stopped() const { return stopped_; }

private:
    static constexpr std::size_t index(Slot slot) { return static_cast<std::size_t>(slot); }
    time_point& at(Slot slot) { return deadlines_[index(slot)]; }

    boost::asio::steady_timer timer_;
    std::array<time_point, N> deadlines_;
    time_point armed_for_ = never;  // what the pending wait is for; never: none pending
    bool stopped_ = false;
};

}  // namespace narwhal::server
