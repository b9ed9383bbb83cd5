// One interpreter's program: set up logging, import the app, create the event loop and
// run the lifespan startup; then serve an inbox until a shutdown event ends the loop;
// then run the lifespan shutdown and close the loop. The Python side is
// narwhal._runtime (each interpreter has its own copy of the package).
//
// C API only: the same code runs the main interpreter and the own-GIL sub-interpreters,
// where pybind11 (whose internals are process-global) must not be used. Every call on
// the interpreter's own thread, with its GIL held.
#pragma once

#include "asgi/inbox.hpp"
#include "asgi/io_pump.hpp"
#include "asgi/loop_monitor.hpp"
#include "asgi/stats.hpp"
#include "config/settings.hpp"
#include "python/py_ref.hpp"

#include <memory>

namespace narwhal::python {

class Dispatcher;
class LoopServices;

class AppLoop {
public:
    // `interpreter`: 0 for the main interpreter; it names the others in their messages.
    AppLoop(const config::Settings& settings, int interpreter);
    ~AppLoop();
    AppLoop(const AppLoop&) = delete;
    AppLoop& operator=(const AppLoop&) = delete;

    // Logging, the app's import, the event loop, the lifespan startup. 0, or the worker's
    // exit status (1: the app cannot be loaded, 3: the lifespan startup failed), the
    // cause logged.
    int start();
    // Joins the loop to its inbox: the loop services (heartbeat every
    // `heartbeat_interval` seconds, 0 for none) and the dispatcher, and to the network
    // side's events when this thread runs them (`io`). false: logged.
    bool attach(asgi::Inbox& inbox, asgi::Stats& stats, asgi::LoopMonitor& monitor,
                double heartbeat_interval, const asgi::IoPump& io = {});
    // Runs the loop until the shutdown it runs has finished. 0, or 1 when the loop failed
    // (logged). Then sends on their way the responses the last tasks left in the deferred
    // wake-ups.
    int serve();
    // The lifespan shutdown if the startup ran and the shutdown has not (serving failed,
    // or never began), then closes the loop. Also after a failed start() or attach().
    void finish();

private:
    // Logs the Python error being raised: the plain message for narwhal's LoadError, the
    // traceback otherwise, and for an extension that cannot be loaded in a
    // sub-interpreter, which one and what to use instead.
    void log_startup_error(const char* what);

    const config::Settings& settings_;
    int interpreter_;
    Ref runtime_;  // narwhal._runtime
    bool lifespan_started_ = false;
    std::unique_ptr<LoopServices> services_;
    std::unique_ptr<Dispatcher> dispatcher_;
};

}  // namespace narwhal::python
