// What the interpreter side of a request needs from its event loop, below the
// dispatcher: interned names and the native types, futures and timers (the loop's
// bound methods, looked up once, as NGINX Unit does), the app-error logger, the
// exception types, the end-of-iteration flush of held response starts and deferred
// wake-ups, step tracking and the heartbeat for the watchdog, the stats, and the
// registry of running cycles (in-flight count, idle waiters, shutdown cancellation,
// abandoning a task that ignores cancellation). One per interpreter; the cycles, their
// steps and cancel scopes keep a pointer to it. Interpreter thread only (GIL held).
#pragma once

#include "asgi/loop_monitor.hpp"
#include "asgi/stats.hpp"
#include "python/names.hpp"
#include "python/native_module.hpp"
#include "python/py_ref.hpp"

#include <Python.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace narwhal::python {

struct CycleObject;

// The interpreter side's settings (filled from config::Settings by the worker).
struct LoopConfig {
    std::string root_path;
    std::size_t read_window = 0;
    std::size_t send_high_water = 0;
    std::size_t send_low_water = 0;
    std::size_t batch = 64;
    double disconnect_grace = 2.0;
    double cancel_grace = 1.0;
    double request_timeout = 0.0;
    double heartbeat_interval = 0.05;  // 0: no heartbeat (watchdog off)
    bool reset_contextvars = false;    // each request's task in a new, empty Context
};

class LoopServices {
public:
    // Objects borrowed and kept: `native_module` (the interpreter's `_narwhal`), the
    // event loop, the narwhal._runtime module (task_stack, request_finished hooks),
    // narwhal._log.log_exception and ClientDisconnected. nullptr with a Python error
    // set when the loop lacks what is needed.
    static std::unique_ptr<LoopServices>
    create(PyObject* native_module, asgi::Stats& stats, asgi::LoopMonitor& monitor, LoopConfig cfg,
           PyObject* loop, PyObject* runtime, PyObject* log_exception, PyObject* disconnected_type);
    ~LoopServices();
    LoopServices(const LoopServices&) = delete;
    LoopServices& operator=(const LoopServices&) = delete;

    const Names& names() const { return *names_; }
    const NativeState& types() const { return *native_; }
    const LoopConfig& config() const { return cfg_; }
    asgi::Stats& stats() { return stats_; }

    PyObject* create_future();           // new reference, or nullptr with an error set
    bool call_soon(PyObject* callable);  // false: reported as unraisable
    bool call_later(double delay, PyObject* callable);  // false: error set
    void log_exception(const std::string& what, PyObject* exc);
    PyObject* disconnected_type() const { return disconnected_type_.get(); }
    PyObject* cancelled_error() const { return cancelled_error_.get(); }

    // Starts the heartbeat and the end-of-iteration flush: `flush` and `beat` are the
    // callables the loop runs for them (bound methods of the dispatcher's handle).
    void start(PyObject* flush, PyObject* beat);
    // The heartbeat the watchdog watches, re-scheduling itself.
    void beat();
    // End-of-iteration work, scheduled with one call_soon per loop iteration that needs
    // it: held response starts go out, then the deferred wake-ups of the I/O threads.
    void schedule_start_flush(CycleObject* c);
    void request_flush();
    void flush();

    // Around each step of a request's coroutine: which request the loop is running.
    void step_begin(CycleObject* c);
    void step_end();
    // For the task factory: (id, method, path) of the request whose step is running, or
    // None; marks that request as having spawned tasks.
    PyObject* current_request();

    // Every cycle until it is deallocated (new_cycle, its dealloc). When the services go,
    // the cycles still alive are told (CycleState::services becomes nullptr): a request's
    // coroutine finalised later, as the interpreter shuts down, may still call receive()
    // or send().
    void adopt(CycleObject* c);
    void forget(CycleObject* c);

    // The running cycles. track() takes a reference until the cycle finishes.
    void track(CycleObject* c);
    void on_cycle_finished(CycleObject* c);
    std::size_t inflight() const { return inflight_; }
    PyObject* idle();  // new reference: a future resolved when nothing is in flight
    void cancel_all();
    // Gives up on a task that ignored cancellation (cancel_scope.cpp), with a report.
    void abandon(CycleObject* c);

private:
    LoopServices(PyObject* native_module, NativeState* native, asgi::Stats& stats,
                 asgi::LoopMonitor& monitor, LoopConfig cfg);

    Ref module_;  // keeps `native_` (the module's state) alive
    const NativeState* native_;
    const Names* names_;
    LoopConfig cfg_;
    asgi::Stats& stats_;
    asgi::LoopMonitor& monitor_;
    Ref create_future_, call_soon_, call_later_, cancelled_error_, runtime_, log_exception_,
        disconnected_type_, flush_fn_, beat_fn_;
    int64_t last_due_ns_ = 0;
    std::vector<Ref> flush_list_;
    bool flush_scheduled_ = false;
    CycleObject* cycles_ = nullptr;   // head of the intrusive list of every cycle
    CycleObject* live_ = nullptr;     // head of the intrusive list of running cycles
    CycleObject* current_ = nullptr;  // the cycle whose step is running
    std::size_t inflight_ = 0;
    std::vector<Ref> idle_waiters_;
};

}  // namespace narwhal::python
