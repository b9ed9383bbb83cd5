#include "python/loop_services.hpp"

#include "asgi/channel.hpp"
#include "asgi/deferred_wake.hpp"
#include "asgi/log.hpp"
#include "python/cancel_scope.hpp"
#include "python/cycle.hpp"

namespace narwhal::python {

std::unique_ptr<LoopServices> LoopServices::create(PyObject* native_module, asgi::Stats& stats,
                                                   asgi::LoopMonitor& monitor, LoopConfig cfg,
                                                   PyObject* loop, PyObject* runtime,
                                                   PyObject* log_exception,
                                                   PyObject* disconnected_type) {
    NativeState* native = native_state(native_module);
    if (!native)
        return nullptr;
    std::unique_ptr<LoopServices> s(
        new LoopServices(native_module, native, stats, monitor, std::move(cfg)));
    s->runtime_ = Ref::borrow(runtime);
    s->log_exception_ = Ref::borrow(log_exception);
    s->disconnected_type_ = Ref::borrow(disconnected_type);
    // The loop's bound methods, looked up once.
    s->create_future_ = Ref::steal(PyObject_GetAttrString(loop, "create_future"));
    s->call_soon_ = Ref::steal(PyObject_GetAttrString(loop, "call_soon"));
    s->call_later_ = Ref::steal(PyObject_GetAttrString(loop, "call_later"));
    Ref asyncio = Ref::steal(PyImport_ImportModule("asyncio"));
    if (asyncio)
        s->cancelled_error_ = Ref::steal(PyObject_GetAttrString(asyncio.get(), "CancelledError"));
    if (!s->create_future_ || !s->call_soon_ || !s->call_later_ || !s->cancelled_error_)
        return nullptr;
    return s;
}

LoopServices::LoopServices(PyObject* native_module, NativeState* native, asgi::Stats& stats,
                           asgi::LoopMonitor& monitor, LoopConfig cfg)
    : module_(Ref::borrow(native_module)), native_(native), names_(native->names),
      cfg_(std::move(cfg)), stats_(stats), monitor_(monitor) {
    asgi::set_wake_scheduler([](void* self) { static_cast<LoopServices*>(self)->request_flush(); },
                             this);
}

LoopServices::~LoopServices() {
    asgi::run_deferred_wakes();
    asgi::set_wake_scheduler(nullptr, nullptr);
    for (CycleObject* c = cycles_; c; c = c->s->all_next)
        c->s->services = nullptr;
}

PyObject* LoopServices::create_future() { return PyObject_CallNoArgs(create_future_.get()); }

bool LoopServices::call_soon(PyObject* callable) {
    Ref r = Ref::steal(PyObject_CallOneArg(call_soon_.get(), callable));
    if (!r) {
        PyErr_WriteUnraisable(callable);
        return false;
    }
    return true;
}

bool LoopServices::call_later(double delay, PyObject* callable) {
    Ref d = Ref::steal(PyFloat_FromDouble(delay));
    Ref r =
        d ? Ref::steal(PyObject_CallFunctionObjArgs(call_later_.get(), d.get(), callable, nullptr))
          : Ref();
    return r.get() != nullptr;
}

void LoopServices::log_exception(const std::string& what, PyObject* exc) {
    Ref msg =
        Ref::steal(PyUnicode_FromStringAndSize(what.data(), static_cast<Py_ssize_t>(what.size())));
    Ref r = Ref::steal(PyObject_CallFunctionObjArgs(log_exception_.get(), msg.get(), exc, nullptr));
    if (!r) {
        PyErr_Clear();
        log::error("{}", what);
    }
}

// --- heartbeat and end-of-iteration flush --------------------------------------------

void LoopServices::start(PyObject* flush, PyObject* beat) {
    flush_fn_ = Ref::borrow(flush);
    beat_fn_ = Ref::borrow(beat);
    if (cfg_.heartbeat_interval > 0)
        this->beat();
}

void LoopServices::beat() {
    int64_t now = asgi::LoopMonitor::now_ns();
    if (last_due_ns_ != 0 && now > last_due_ns_)
        stats_.note_lag((now - last_due_ns_) / 1000);  // how late this turn came
    auto interval = static_cast<int64_t>(cfg_.heartbeat_interval * 1e9);
    last_due_ns_ = now + interval;
    monitor_.beat(now, interval);
    if (!call_later(cfg_.heartbeat_interval, beat_fn_.get()))
        PyErr_WriteUnraisable(beat_fn_.get());
}

void LoopServices::schedule_start_flush(CycleObject* c) {
    flush_list_.push_back(Ref::borrow(reinterpret_cast<PyObject*>(c)));
    request_flush();
}

void LoopServices::request_flush() {
    if (flush_scheduled_ || !flush_fn_)
        return;
    flush_scheduled_ = true;
    call_soon(flush_fn_.get());
}

void LoopServices::flush() {
    auto list = std::move(flush_list_);
    flush_list_.clear();
    for (auto& o : list)
        cycle_flush_start(reinterpret_cast<CycleObject*>(o.get()));
    // Before the wake-ups run: one may run the network side on this thread
    // (--io-threads 0), whose events defer wake-ups of their own, and those need a flush
    // of their own.
    flush_scheduled_ = false;
    asgi::run_deferred_wakes();
}

// --- step tracking -------------------------------------------------------------------

void LoopServices::step_begin(CycleObject* c) {
    current_ = c;
    if (cfg_.heartbeat_interval > 0)
        monitor_.step_begin(c->s->channel ? c->s->channel->id() : 0, c->s->request_line(),
                            c->s->request_id());
}

void LoopServices::step_end() {
    current_ = nullptr;
    if (cfg_.heartbeat_interval > 0)
        monitor_.step_end();
}

PyObject* LoopServices::current_request() {
    if (!current_)
        Py_RETURN_NONE;
    CycleState& s = *current_->s;
    s.spawned_tasks = true;
    auto sp1 = s.request_line().find(' ');
    auto sp2 = s.request_line().rfind(' ');
    std::string method(s.request_line().substr(0, sp1));
    std::string target(sp1 == std::string::npos ? std::string_view()
                                                : s.request_line().substr(sp1 + 1, sp2 - sp1 - 1));
    return Py_BuildValue("(Kss)", static_cast<unsigned long long>(s.channel ? s.channel->id() : 0),
                         method.c_str(), target.c_str());
}

// --- running cycles ------------------------------------------------------------------

void LoopServices::adopt(CycleObject* c) {
    CycleState& s = *c->s;
    s.all_next = cycles_;
    if (cycles_)
        cycles_->s->all_prev = c;
    cycles_ = c;
}

void LoopServices::forget(CycleObject* c) {
    CycleState& s = *c->s;
    if (s.all_prev)
        s.all_prev->s->all_next = s.all_next;
    else
        cycles_ = s.all_next;
    if (s.all_next)
        s.all_next->s->all_prev = s.all_prev;
    s.all_prev = s.all_next = nullptr;
}

void LoopServices::track(CycleObject* c) {
    Py_INCREF(c);
    CycleState& s = *c->s;
    s.next = live_;
    if (live_)
        live_->s->prev = c;
    live_ = c;
    ++inflight_;
}

void LoopServices::on_cycle_finished(CycleObject* c) {
    CycleState& s = *c->s;
    if (s.spawned_tasks && s.channel) {
        // Tasks it spawned are checked for leaks a while later.
        Ref r = Ref::steal(PyObject_CallMethod(runtime_.get(), "request_finished", "K",
                                               static_cast<unsigned long long>(s.channel->id())));
        if (!r)
            PyErr_WriteUnraisable(runtime_.get());
    }
    // Unlink from the running list and drop the list's reference.
    if (s.prev)
        s.prev->s->next = s.next;
    else if (live_ == c)
        live_ = s.next;
    else
        return;  // not linked
    if (s.next)
        s.next->s->prev = s.prev;
    s.prev = s.next = nullptr;
    --inflight_;
    if (inflight_ == 0) {
        auto waiters = std::move(idle_waiters_);
        for (auto& w : waiters) {
            Ref done = Ref::steal(PyObject_CallMethodNoArgs(w.get(), names_->done));
            if (done && done.get() == Py_False) {
                Ref r = Ref::steal(PyObject_CallMethodOneArg(w.get(), names_->set_result, Py_None));
            }
            PyErr_Clear();
        }
    }
    Py_DECREF(c);
}

PyObject* LoopServices::idle() {
    PyObject* fut = create_future();
    if (!fut)
        return nullptr;
    if (inflight_ == 0) {
        Ref r = Ref::steal(PyObject_CallMethodOneArg(fut, names_->set_result, Py_None));
    } else {
        idle_waiters_.push_back(Ref::borrow(fut));
    }
    return fut;
}

void LoopServices::cancel_all() {
    // Keep every cycle alive while walking: cancelling one may unlink it.
    std::vector<Ref> all;
    for (CycleObject* c = live_; c; c = c->s->next)
        all.push_back(Ref::borrow(reinterpret_cast<PyObject*>(c)));
    for (auto& r : all)
        scope_cancel(reinterpret_cast<CycleObject*>(r.get()), CancelReason::shutdown);
}

void LoopServices::abandon(CycleObject* c) {
    CycleState& s = *c->s;
    stats_.abandoned.fetch_add(1, std::memory_order_relaxed);
    std::string stack;
    if (s.task) {
        Ref text = Ref::steal(PyObject_CallMethod(runtime_.get(), "task_stack", "O", s.task.get()));
        if (text && PyUnicode_Check(text.get()))
            stack = PyUnicode_AsUTF8(text.get());
        PyErr_Clear();
    }
    log::error("Request abandoned: its task ignored {} cancellations (after {}); closing the "
               "connection: {} ({})\n{}",
               cancel_attempts, cancel_reason_text(s.cancel_reason), s.request_line(), s.label(),
               stack);
    cycle_abandon(c);
}

}  // namespace narwhal::python
