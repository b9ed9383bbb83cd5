// The bridge between narwhal's logger (asgi/log.hpp) and Python's `logging`, both ways.
//
// Out of Python: narwhal._logconfig's default handler writes the records Python's
// logging gives it through asgi/log's writer (`_write`), so an app's records, and ours
// when they went through Python, look like narwhal's own lines.
//
// Into Python: when a logger is forwarded (`_forward`: --log-config, or an app that
// attached handlers or filters to a uvicorn logger), narwhal's records of that logger
// are queued (asgi/log_queue.hpp) and this object's delivery thread hands them to
// narwhal._logconfig.deliver in batches, one GIL hold per batch. A dedicated thread and
// not the event loop: records must flow before the loop exists and after it stopped,
// and a loop that is blocked must not hold up the logs that report it. I/O threads
// never take the GIL; when the queue is full they drop the record, and the next
// delivery reports how many were dropped.
#pragma once

#include "python/py_ref.hpp"

#include <Python.h>

#include <memory>
#include <thread>

namespace narwhal::python {

class LogBridge {
public:
    // GIL held. Gives narwhal._logconfig its native functions and starts the delivery
    // thread. nullptr with a Python error set on failure.
    static std::unique_ptr<LogBridge> start();
    // GIL held, in a sub-interpreter: gives its narwhal._logconfig the writer only, so
    // its records (the app's, and narwhal's Python-side messages) come out as narwhal's
    // lines. Nothing is forwarded into it: narwhal's own records reach the main
    // interpreter's logging only, so an app's own handlers on the uvicorn loggers see the
    // server's records once, there. false with a Python error set.
    static bool attach_writer();
    // GIL held. Stops forwarding (later records are written directly), delivers what is
    // queued, and joins the thread (releasing the GIL while it waits).
    ~LogBridge();
    LogBridge(const LogBridge&) = delete;
    LogBridge& operator=(const LogBridge&) = delete;

private:
    LogBridge() = default;
    void run();

    Ref deliver_;  // narwhal._logconfig.deliver
    std::thread thread_;
};

}  // namespace narwhal::python
