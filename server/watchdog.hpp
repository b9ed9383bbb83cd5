// The blocked-loop watchdog: a C++ thread that holds no GIL while it waits. It checks
// each loop's heartbeat; when a loop has not turned for the threshold it reports once:
// worker, interpreter, how long so far, the request being run and the loop thread's
// Python stack (read through a StackReader, which may have to wait for the GIL). When
// the loop turns again it reports the whole stall.
#pragma once

#include "asgi/loop_monitor.hpp"
#include "asgi/stats.hpp"

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace narwhal::server {

struct StackFrame {
    std::string file;
    int line = 0;
    std::string function;
    std::string text;  // the source line, if known
};

// Implemented next to the interpreter (python/): reads a thread's Python stack.
class StackReader {
public:
    virtual ~StackReader() = default;
    // Reads the stack of Python thread `ident` and calls `done` with it, from another
    // thread, as soon as the stack can be read (the GIL may be held by the blocked loop).
    virtual void request(unsigned long ident,
                         std::function<void(std::vector<StackFrame>)> done) = 0;
};

// How long a report waits for the stack before going out without it; the stack then
// follows in its own line when the GIL frees up.
inline constexpr std::chrono::milliseconds default_stack_wait{50};

class Watchdog {
public:
    Watchdog(asgi::LoopMonitor& monitor, asgi::Stats& stats, StackReader& stacks,
             double threshold_seconds, int interpreter,
             std::chrono::milliseconds stack_wait = default_stack_wait);
    ~Watchdog();

    void start();
    void stop();

private:
    void run();
    void check(int64_t now);
    void report_blocked(int64_t blocked_ns);
    void report_stack_later(const asgi::LoopMonitor::Step& step, std::vector<StackFrame> frames,
                            int64_t read_after_ns);
    void report_unblocked(int64_t blocked_ns);

    asgi::LoopMonitor& monitor_;
    asgi::Stats& stats_;
    StackReader& stacks_;
    int64_t threshold_ns_;
    int interpreter_;
    std::chrono::milliseconds stack_wait_;

    std::thread thread_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool stopping_ = false;

    // The stall in progress (watchdog thread only, except the stack hand-off).
    bool stalled_ = false;
    int64_t stall_due_ns_ = 0;  // when the heartbeat should have run
    asgi::LoopMonitor::Step stall_step_;
    uint64_t stall_seq_ = 0;  // guarded by mu_
    bool stack_ready_ = false;  // guarded by mu_
    bool waiting_for_stack_ = false;  // guarded by mu_: the report still waits for the stack
    std::vector<StackFrame> stack_;  // guarded by mu_
};

std::string format_stack(const std::vector<StackFrame>& frames);

}  // namespace narwhal::server
