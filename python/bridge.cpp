#include "python/bridge.hpp"

#include "asgi/channel.hpp"
#include "asgi/deferred_wake.hpp"
#include "asgi/log.hpp"
#include "python/cancel_scope.hpp"
#include "python/cycle.hpp"
#include "python/request_step.hpp"
#include "python/scope.hpp"

#include <fmt/format.h>

namespace narwhal::python {

Bridge::Bridge(asgi::Inbox& inbox, asgi::Stats& stats, asgi::LoopMonitor& monitor,
               BridgeConfig cfg, PyObject* app, PyObject* loop, PyObject* state, PyObject* runtime,
               PyObject* log_exception, PyObject* disconnected_type, PyObject* on_shutdown)
    : inbox_(inbox), cfg_(std::move(cfg)), app_(Ref::borrow(app)), loop_(Ref::borrow(loop)),
      state_(Ref::borrow(state == Py_None ? nullptr : state)),
      log_exception_(Ref::borrow(log_exception)),
      disconnected_type_(Ref::borrow(disconnected_type)), on_shutdown_(Ref::borrow(on_shutdown)),
      runtime_(Ref::borrow(runtime)), stats_(stats), monitor_(monitor) {
    // The loop's bound methods, looked up once (NGINX Unit does the same).
    create_future_ = Ref::steal(PyObject_GetAttrString(loop, "create_future"));
    create_task_ = Ref::steal(PyObject_GetAttrString(loop, "create_task"));
    call_soon_ = Ref::steal(PyObject_GetAttrString(loop, "call_soon"));
    call_later_ = Ref::steal(PyObject_GetAttrString(loop, "call_later"));
    Ref asyncio = Ref::steal(PyImport_ImportModule("asyncio"));
    if (asyncio) {
        cancelled_error_ = Ref::steal(PyObject_GetAttrString(asyncio.get(), "CancelledError"));
        task_type_ = Ref::steal(PyObject_GetAttrString(asyncio.get(), "Task"));
    }
    loop_kwnames_ = Ref::steal(Py_BuildValue("(s)", "loop"));
    batch_.reserve(cfg_.batch);
    asgi::set_wake_scheduler([](void* self) { static_cast<Bridge*>(self)->request_flush(); }, this);
}

Bridge::~Bridge() {
    asgi::run_deferred_wakes();
    asgi::set_wake_scheduler(nullptr, nullptr);
}

PyObject* Bridge::create_future() { return PyObject_CallNoArgs(create_future_.get()); }

bool Bridge::call_soon(PyObject* callable) {
    Ref r = Ref::steal(PyObject_CallOneArg(call_soon_.get(), callable));
    if (!r) {
        PyErr_WriteUnraisable(callable);
        return false;
    }
    return true;
}

void Bridge::log_exception(const std::string& what, PyObject* exc) {
    Ref msg = Ref::steal(PyUnicode_FromStringAndSize(what.data(), static_cast<Py_ssize_t>(what.size())));
    Ref r = Ref::steal(PyObject_CallFunctionObjArgs(log_exception_.get(), msg.get(), exc, nullptr));
    if (!r) {
        PyErr_Clear();
        log::error("{}", what);
    }
}

void Bridge::drain() {
    drain_scheduled_ = false;
    bool more = inbox_.take(batch_, cfg_.batch);
    for (auto& ev : batch_) {
        switch (ev.kind) {
        case asgi::Event::Kind::request:
            start_request(ev);
            break;
        case asgi::Event::Kind::body:
            if (auto* c = static_cast<CycleObject*>(ev.channel->owner))
                cycle_on_body(c, std::move(ev.body), ev.more_body);
            break;
        case asgi::Event::Kind::disconnect:
            if (auto* c = static_cast<CycleObject*>(ev.channel->owner))
                cycle_on_disconnect(c);
            break;
        case asgi::Event::Kind::drained:
            if (auto* c = static_cast<CycleObject*>(ev.channel->owner))
                cycle_on_drained(c);
            break;
        case asgi::Event::Kind::ws_message:
            if (auto* c = static_cast<CycleObject*>(ev.channel->owner))
                cycle_on_ws_message(c, std::move(ev.body), ev.text);
            break;
        case asgi::Event::Kind::ws_closed:
            if (auto* c = static_cast<CycleObject*>(ev.channel->owner))
                cycle_on_ws_closed(c, ev.code);
            break;
        case asgi::Event::Kind::deadline:
            if (auto* c = static_cast<CycleObject*>(ev.channel->owner)) {
                cycle_on_disconnect(c);  // the client already got its 504 (or a close)
                scope_cancel(c, CancelReason::deadline);
            }
            break;
        case asgi::Event::Kind::shutdown: {
            Ref r = Ref::steal(PyObject_CallNoArgs(on_shutdown_.get()));
            if (!r)
                PyErr_WriteUnraisable(on_shutdown_.get());
            break;
        }
        }
        if (PyErr_Occurred())
            PyErr_WriteUnraisable(nullptr);
    }
    batch_.clear();
    // Leave the rest for the next loop iteration so running tasks are not starved.
    if (more && !drain_scheduled_ && drain_again_) {
        drain_scheduled_ = true;
        call_soon(drain_again_.get());
    }
}

void Bridge::start_request(asgi::Event& ev) {
    Ref cycle_obj = Ref::steal(reinterpret_cast<PyObject*>(new_cycle(this, ev.channel)));
    if (!cycle_obj) {
        PyErr_WriteUnraisable(nullptr);
        ev.channel->submit(asgi::Command{.kind = asgi::Command::Kind::abort});
        ev.channel->detach();
        return;
    }
    auto* c = reinterpret_cast<CycleObject*>(cycle_obj.get());
    CycleState& s = *c->s;
    const auto& head = *ev.head;
    s.response = asgi::ResponseState(head.head_request);
    s.websocket = head.websocket;
    s.expect_continue = head.expect_continue;
    s.request_line = fmt::format("{} {} HTTP/{}.{}", head.method_view(), head.target_view(),
                                 head.version / 10, head.version % 10);
    if (!ev.body.empty())
        s.body_queue.push_back(std::move(ev.body));
    s.body_complete = !ev.more_body;
    ev.channel->owner = c;

    // Running list: the list holds a reference until the request finishes.
    Py_INCREF(c);
    s.next = live_;
    if (live_)
        live_->s->prev = c;
    live_ = c;
    ++inflight_;

    Ref send = Ref::steal(new_send(c));
    Ref scope = Ref::steal(head.websocket
                               ? build_websocket_scope(names_, head, *ev.peer, cfg_.root_path, state_.get())
                               : build_http_scope(names_, head, *ev.peer, cfg_.root_path, state_.get()));
    if (!send || !scope) {
        Ref exc = Ref::steal(fetch_exception());
        cycle_fail(c, exc.get() ? exc.get() : Py_None);
        return;
    }
    Ref coro = Ref::steal(
        PyObject_CallFunctionObjArgs(app_.get(), scope.get(), cycle_obj.get(), send.get(), nullptr));
    Ref step = coro ? Ref::steal(new_request_step(c, coro.get())) : Ref();
    // asyncio.Task directly, not loop.create_task: the app's task factory (ours, which
    // tracks tasks the app spawns) is not for the request's own task.
    PyObject* args[] = {step.get(), loop_.get()};
    Ref task = step ? Ref::steal(PyObject_Vectorcall(task_type_.get(), args, 1, loop_kwnames_.get()))
                    : Ref();
    if (!task) {
        Ref exc = Ref::steal(fetch_exception());
        cycle_fail(c, exc.get() ? exc.get() : Py_None);
        return;
    }
    s.task = std::move(task);
}

void Bridge::on_cycle_finished(CycleObject* c) {
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
            Ref done = Ref::steal(PyObject_CallMethodNoArgs(w.get(), names_.done));
            if (done && done.get() == Py_False) {
                Ref r = Ref::steal(PyObject_CallMethodOneArg(w.get(), names_.set_result, Py_None));
            }
            PyErr_Clear();
        }
    }
    Py_DECREF(c);
}

PyObject* Bridge::idle() {
    PyObject* fut = create_future();
    if (!fut)
        return nullptr;
    if (inflight_ == 0) {
        Ref r = Ref::steal(PyObject_CallMethodOneArg(fut, names_.set_result, Py_None));
    } else {
        idle_waiters_.push_back(Ref::borrow(fut));
    }
    return fut;
}

void Bridge::cancel_all() {
    // Keep every cycle alive while walking: cancelling one may unlink it.
    std::vector<Ref> all;
    for (CycleObject* c = live_; c; c = c->s->next)
        all.push_back(Ref::borrow(reinterpret_cast<PyObject*>(c)));
    for (auto& r : all)
        scope_cancel(reinterpret_cast<CycleObject*>(r.get()), CancelReason::shutdown);
}

bool Bridge::call_later(double delay, PyObject* callable) {
    Ref d = Ref::steal(PyFloat_FromDouble(delay));
    Ref r = d ? Ref::steal(PyObject_CallFunctionObjArgs(call_later_.get(), d.get(), callable, nullptr))
              : Ref();
    return r.get() != nullptr;
}

void Bridge::abandon(CycleObject* c) {
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
               "connection: {} (id {})\n{}",
               cancel_attempts, cancel_reason_text(s.cancel_reason), s.request_line,
               s.channel ? s.channel->id() : 0, stack);
    cycle_abandon(c);
}

void Bridge::step_begin(CycleObject* c) {
    current_ = c;
    if (cfg_.heartbeat_interval > 0)
        monitor_.step_begin(c->s->channel ? c->s->channel->id() : 0, c->s->request_line);
}

void Bridge::step_end() {
    current_ = nullptr;
    if (cfg_.heartbeat_interval > 0)
        monitor_.step_end();
}

void Bridge::set_self(PyObject* bound_drain, PyObject* bound_flush, PyObject* bound_beat) {
    drain_again_ = Ref::borrow(bound_drain);
    flush_fn_ = Ref::borrow(bound_flush);
    beat_fn_ = Ref::borrow(bound_beat);
    if (cfg_.heartbeat_interval > 0)
        beat();
}

void Bridge::beat() {
    int64_t now = asgi::LoopMonitor::now_ns();
    if (last_due_ns_ != 0 && now > last_due_ns_)
        stats_.note_lag((now - last_due_ns_) / 1000);  // how late this turn came
    auto interval = static_cast<int64_t>(cfg_.heartbeat_interval * 1e9);
    last_due_ns_ = now + interval;
    monitor_.beat(now, interval);
    if (!call_later(cfg_.heartbeat_interval, beat_fn_.get()))
        PyErr_WriteUnraisable(beat_fn_.get());
}

PyObject* Bridge::current_request() {
    if (!current_)
        Py_RETURN_NONE;
    CycleState& s = *current_->s;
    s.spawned_tasks = true;
    auto sp1 = s.request_line.find(' ');
    auto sp2 = s.request_line.rfind(' ');
    std::string method = s.request_line.substr(0, sp1);
    std::string target = sp1 == std::string::npos ? "" : s.request_line.substr(sp1 + 1, sp2 - sp1 - 1);
    return Py_BuildValue("(Kss)", static_cast<unsigned long long>(s.channel ? s.channel->id() : 0),
                         method.c_str(), target.c_str());
}

void Bridge::schedule_start_flush(CycleObject* c) {
    flush_list_.push_back(Ref::borrow(reinterpret_cast<PyObject*>(c)));
    request_flush();
}

void Bridge::request_flush() {
    if (flush_scheduled_ || !flush_fn_)
        return;
    flush_scheduled_ = true;
    call_soon(flush_fn_.get());
}

void Bridge::flush() {
    auto list = std::move(flush_list_);
    flush_list_.clear();
    for (auto& o : list)
        cycle_flush_start(reinterpret_cast<CycleObject*>(o.get()));
    asgi::run_deferred_wakes();
    flush_scheduled_ = false;
}

}  // namespace narwhal::python
