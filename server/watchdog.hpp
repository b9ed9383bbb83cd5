// The blocked-loop watchdog: a C++ thread that holds no GIL while it waits. It checks
// each loop's heartbeat; when a loop has not turned for the threshold it reports once:
// worker, interpreter, how long so far, the request being run and the loop thread's
// Python stack (read through an asgi::StackReader, which may have to wait for the GIL).
// When the loop turns again it reports the whole stall: its length and how many checks
// found the loop still stalled.
//
// Flood control: an app that blocks the loop in the same place again and again (a sync
// generator that sleeps per chunk of a streamed response) would otherwise log one
// multi-line report per chunk. A stall whose stack (by hash) was already reported within
// `repeat_window` is counted instead, and the count goes out as one line ("same stack as
// before, N more times") when the window closes or the watchdog stops.
#pragma once

#include "asgi/loop_monitor.hpp"
#include "asgi/stack_reader.hpp"
#include "asgi/stats.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace narwhal::server {

// The watchdog's sense of time: what "now" is, and how it waits. Every wait of the
// watchdog thread (the check period, the wait for a stack) goes through here, so the unit
// tests can move time themselves instead of depending on how fast a busy machine runs.
class WatchdogClock {
public:
    virtual ~WatchdogClock() = default;
    // On the scale of asgi::LoopMonitor's heartbeats.
    virtual int64_t now_ns() = 0;
    // Called with `lock` held on `cv`'s mutex, returns with it held: waits until `ready()`
    // holds (checked under the lock, re-checked whenever `cv` is notified) or `timeout`
    // has passed on this clock. Returns ready().
    virtual bool wait_for(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                          std::chrono::nanoseconds timeout, const std::function<bool()>& ready) = 0;

    // The steady clock (asgi::LoopMonitor::now_ns) and condition_variable::wait_for.
    static WatchdogClock& steady();
};

class Watchdog {
public:
    // How long a report waits for the stack before going out without it; the stack then
    // follows in its own report when the GIL frees up.
    static constexpr std::chrono::nanoseconds stack_wait = std::chrono::milliseconds(50);
    // How long after a stack's report further stalls with the same stack are only counted:
    // long enough to fold a streamed response's per-chunk stalls into one line, short
    // enough that an operator sees the full report again within a minute.
    static constexpr std::chrono::nanoseconds repeat_window = std::chrono::seconds(30);

    Watchdog(asgi::LoopMonitor& monitor, asgi::Stats& stats, asgi::StackReader& stacks,
             double threshold_seconds, int interpreter,
             WatchdogClock& clock = WatchdogClock::steady());
    ~Watchdog();

    void start();
    void stop();

    // How often the heartbeat is checked: four times per threshold, so a stall is
    // reported at most a quarter late.
    std::chrono::nanoseconds period() const { return period_; }

private:
    void run();
    void check(int64_t now);
    void report_blocked(int64_t blocked_ns);
    void report_stack_later(const asgi::LoopMonitor::Step& step,
                            std::vector<asgi::StackFrame> frames, int64_t read_after_ns);
    void report_unblocked(int64_t blocked_ns);

    // Stalls with one stack since its last full report (watchdog thread only).
    struct Repeats {
        uint64_t stack_hash = 0;
        int64_t reported_ns = 0;  // the full report: the window runs from here
        uint64_t count = 0;       // stalls counted instead of reported
        int64_t total_ns = 0;     // their summed length (those that ended)
        int64_t longest_ns = 0;
    };
    // True when the stall with this stack is to be counted, not reported.
    bool repeats_recent_stack(uint64_t stack_hash, int64_t now);
    // Reports and forgets the windows closed at `now` (every window with `all`).
    void close_repeat_windows(int64_t now, bool all);
    void report_repeats(const Repeats& r, int64_t now);

    asgi::LoopMonitor& monitor_;
    asgi::Stats& stats_;
    asgi::StackReader& stacks_;
    WatchdogClock& clock_;
    int64_t threshold_ns_;
    std::chrono::nanoseconds period_;
    int interpreter_;

    std::thread thread_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool stopping_ = false;

    // The stall in progress (watchdog thread only, except the stack hand-off).
    bool stalled_ = false;
    int64_t stall_due_ns_ = 0;  // when the heartbeat should have run
    int64_t stall_checks_ = 0;  // checks that found this stall going on
    bool stall_quiet_ = false;  // its stack was reported recently: counted, not reported
    uint64_t stall_hash_ = 0;
    std::vector<Repeats> repeats_;  // one per stack reported within repeat_window
    asgi::LoopMonitor::Step stall_step_;
    uint64_t stall_seq_ = 0;               // guarded by mu_
    bool stack_ready_ = false;             // guarded by mu_
    bool waiting_for_stack_ = false;       // guarded by mu_: the report still waits for the stack
    std::vector<asgi::StackFrame> stack_;  // guarded by mu_
};

std::string format_stack(const std::vector<asgi::StackFrame>& frames);
// Identifies a stack by its frames' files, lines and functions (not the source text).
uint64_t stack_hash(const std::vector<asgi::StackFrame>& frames);

}  // namespace narwhal::server
