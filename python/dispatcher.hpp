// The interpreter side of the bridge: drains the inbox in bounded batches under one
// GIL hold, starts one task per request, and routes body, disconnect, drained,
// WebSocket and deadline events to their request's cycle. Everything else a request
// needs from its loop comes from LoopServices, below it.
//
// Its Python face is a narwhal.Dispatcher handle (handle()), which narwhal._runtime
// drives: `fd` and `drain` for loop.add_reader (and `io_fd` and `pump_io` when the
// loop's thread also runs the network side), `inflight()`, `idle()` and
// `cancel_all()` for shutdown, `current_request()` and `set_task_factory()` for the task
// factories, and `_flush` / `_beat`, the callables the services schedule on the loop.
#pragma once

#include "asgi/events.hpp"
#include "asgi/inbox.hpp"
#include "asgi/io_pump.hpp"
#include "python/loop_services.hpp"
#include "python/py_ref.hpp"
#include "python/scope.hpp"

#include <Python.h>

#include <memory>
#include <vector>

namespace narwhal::python {

class Dispatcher {
public:
    // Objects borrowed and kept: the app (ASGI 3 callable), the event loop, the
    // lifespan state dict (or None) and the callable to run when a shutdown event
    // arrives. Starts the services (heartbeat, flush). nullptr with a Python error set.
    static std::unique_ptr<Dispatcher> create(asgi::Inbox& inbox, LoopServices& services,
                                              PyObject* app, PyObject* loop, PyObject* state,
                                              PyObject* on_shutdown);
    // The handle stays valid (its methods do nothing or raise) after this is gone.
    ~Dispatcher();
    Dispatcher(const Dispatcher&) = delete;
    Dispatcher& operator=(const Dispatcher&) = delete;

    PyObject* handle() const { return handle_.get(); }  // borrowed
    LoopServices& services() { return services_; }
    int fd() const { return inbox_.fd(); }
    void drain();
    const asgi::IoPump& io_pump() const { return io_pump_; }
    void set_io_pump(const asgi::IoPump& pump) { io_pump_ = pump; }
    // None restores the plain asyncio.Task.
    void set_task_factory(PyObject* factory) {
        app_task_factory_ = Ref::borrow(factory == Py_None ? nullptr : factory);
    }

private:
    Dispatcher(asgi::Inbox& inbox, LoopServices& services);
    void start_request(asgi::Event& ev);

    asgi::Inbox& inbox_;
    LoopServices& services_;
    // loop_context_kwnames_: ("loop", "context"), for --reset-contextvars.
    Ref handle_, app_, loop_, state_, on_shutdown_, task_type_, loop_kwnames_,
        loop_context_kwnames_, context_kwnames_, drain_again_, app_task_factory_;
    ScopeBuilder scopes_;
    std::vector<asgi::Event> batch_;
    bool drain_scheduled_ = false;
    asgi::IoPump io_pump_;
};

// Creates narwhal.Dispatcher (the handle's type) for `module` into `st`. -1 with an
// error set.
int add_dispatcher_type(PyObject* module, NativeState& st);

}  // namespace narwhal::python
