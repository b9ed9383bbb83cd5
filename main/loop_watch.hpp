// What watches one interpreter's event loop: its heartbeat monitor (which, under a
// master, also beats into the worker's slot of the master's table, as loop number
// `interpreter`), the blocked-loop watchdog and the stack reader that reads that
// interpreter's loop stack.
#pragma once

#include "asgi/loop_monitor.hpp"
#include "config/settings.hpp"
#include "python/stack_reader.hpp"
#include "server/front_end.hpp"
#include "server/watchdog.hpp"
#include "server/worker_slots.hpp"

#include <memory>

namespace narwhal {

class LoopWatch {
public:
    LoopWatch(const config::Settings& settings, int interpreter, server::FrontEnd& front,
              server::WorkerSlot* slot);
    ~LoopWatch();
    LoopWatch(const LoopWatch&) = delete;
    LoopWatch& operator=(const LoopWatch&) = delete;

    asgi::LoopMonitor& monitor() { return monitor_; }
    // How often the loop beats, in seconds (0: never).
    double heartbeat_interval() const { return heartbeat_interval_; }

    // Once the loop is joined to its inbox: starts the watchdog (none with
    // --watchdog-threshold 0). `interpreter`: the loop's sub-interpreter, nullptr for the
    // main one.
    void start(PyInterpreterState* interpreter);
    // The loop has ended. Without the GIL (the stack reader may be waiting for it), and
    // before a sub-interpreter is finalised (the reader has a thread state there).
    void stop();

private:
    const config::Settings& settings_;
    int interpreter_;
    server::FrontEnd& front_;
    double heartbeat_interval_;
    asgi::LoopMonitor monitor_;
    std::unique_ptr<python::StackReader> stacks_;
    std::unique_ptr<server::Watchdog> watchdog_;
    bool stopped_ = false;
    int64_t due_ns_ = 0;  // when the next beat is due (loop thread only)
};

}  // namespace narwhal
