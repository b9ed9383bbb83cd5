// The interpreter side of the bridge: drains the inbox in bounded batches under one
// GIL hold, starts one task per request, routes body/disconnect/drained events to
// their request, and tracks running requests for shutdown.
#pragma once

#include "asgi/events.hpp"
#include "asgi/inbox.hpp"
#include "asgi/loop_monitor.hpp"
#include "asgi/stats.hpp"
#include "python/names.hpp"
#include "python/py_ref.hpp"

#include <Python.h>

#include <cstddef>
#include <string>
#include <vector>

namespace narwhal::python {

struct CycleObject;

struct BridgeConfig {
    std::string root_path;
    std::size_t read_window = 0;
    std::size_t send_high_water = 0;
    std::size_t send_low_water = 0;
    std::size_t batch = 64;
    double disconnect_grace = 2.0;
    double cancel_grace = 1.0;
    double request_timeout = 0.0;
    double heartbeat_interval = 0.05;  // 0: no heartbeat (watchdog off)
};

class Bridge {
public:
    // All objects borrowed and kept: the app (ASGI 3 callable), the event loop, the
    // lifespan state dict (or None), narwhal._log.log_exception, ClientDisconnected and
    // the callable to run when a shutdown event arrives.
    // `runtime`: the narwhal._runtime module (task_stack, request_finished hooks).
    Bridge(asgi::Inbox& inbox, asgi::Stats& stats, asgi::LoopMonitor& monitor, BridgeConfig cfg,
           PyObject* app, PyObject* loop, PyObject* state, PyObject* runtime,
           PyObject* log_exception, PyObject* disconnected_type, PyObject* on_shutdown);
    ~Bridge();

    int fd() const { return inbox_.fd(); }
    void drain();
    std::size_t inflight() const { return inflight_; }
    PyObject* idle();  // new reference: a future resolved when nothing is in flight
    void cancel_all();

    // For cycles.
    const Names& names() const { return names_; }
    const BridgeConfig& config() const { return cfg_; }
    PyObject* create_future();  // new reference, or nullptr with an error set
    bool call_soon(PyObject* callable);
    void log_exception(const std::string& what, PyObject* exc);
    PyObject* disconnected_type() const { return disconnected_type_.get(); }
    PyObject* cancelled_error() const { return cancelled_error_.get(); }
    // Around each step of a request's coroutine: which request the loop is running.
    void step_begin(CycleObject* c);
    void step_end();
    asgi::Stats& stats() { return stats_; }
    bool call_later(double delay, PyObject* callable);
    // Gives up on a task that ignored cancellation (cancel_scope.cpp), with a report.
    void abandon(CycleObject* c);

    // Python-facing: the heartbeat the watchdog watches, re-scheduling itself.
    void beat();
    // Python-facing, for the task factory: (id, method, path) of the request whose step
    // is running, or None; marks that request as having spawned tasks.
    PyObject* current_request();
    void on_cycle_finished(CycleObject* c);
    // End-of-iteration work, scheduled with one call_soon per loop iteration that needs
    // it: held response starts go out, then the deferred wake-ups of the I/O threads.
    void schedule_start_flush(CycleObject* c);
    void request_flush();
    void flush();

    // Bound methods of this bridge's Python handle, and the start of the heartbeat.
    void set_self(PyObject* bound_drain, PyObject* bound_flush, PyObject* bound_beat);

private:
    void start_request(asgi::Event& ev);

    asgi::Inbox& inbox_;
    BridgeConfig cfg_;
    Names names_;
    Ref app_, loop_, state_, log_exception_, disconnected_type_, on_shutdown_;
    Ref create_future_, create_task_, call_soon_, call_later_, cancelled_error_, runtime_,
        beat_fn_, task_type_, loop_kwnames_;
    asgi::Stats& stats_;
    asgi::LoopMonitor& monitor_;
    int64_t last_due_ns_ = 0;
    Ref drain_again_, flush_fn_;
    std::vector<asgi::Event> batch_;
    std::vector<Ref> flush_list_;
    bool flush_scheduled_ = false;
    bool drain_scheduled_ = false;
    CycleObject* live_ = nullptr;
    CycleObject* current_ = nullptr;  // head of the intrusive list of running cycles
    std::size_t inflight_ = 0;
    std::vector<Ref> idle_waiters_;
};

}  // namespace narwhal::python
