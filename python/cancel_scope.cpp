#include "python/cancel_scope.hpp"

#include "asgi/log.hpp"
#include "python/bridge.hpp"
#include "python/cycle.hpp"

#include <fmt/format.h>

namespace narwhal::python {

namespace {

void schedule_step(CycleObject* c, double delay);

// One escalation step; `self` is the cycle.
PyObject* cancel_step(PyObject* self, PyObject*) {
    auto* c = reinterpret_cast<CycleObject*>(self);
    CycleState& s = *c->s;
    if (s.finished || !s.task)
        Py_RETURN_NONE;
    Bridge& b = *s.bridge;
    if (s.cancel_attempts >= cancel_attempts) {
        b.abandon(c);
        Py_RETURN_NONE;
    }
    if (s.cancel_attempts++ == 0)
        b.stats().cancelled.fetch_add(1, std::memory_order_relaxed);
    else
        log::warning("Request task ignored cancellation, cancelling again ({} of {}): {} (id {})",
                     s.cancel_attempts, cancel_attempts, s.request_line, s.channel ? s.channel->id() : 0);
    Ref r = Ref::steal(PyObject_CallMethodNoArgs(s.task.get(), b.names().cancel));
    if (!r)
        PyErr_WriteUnraisable(s.task.get());
    schedule_step(c, b.config().cancel_grace);
    Py_RETURN_NONE;
}

PyMethodDef cancel_step_def = {"_cancel_step", cancel_step, METH_NOARGS, nullptr};

void schedule_step(CycleObject* c, double delay) {
    Ref fn = Ref::steal(PyCFunction_New(&cancel_step_def, reinterpret_cast<PyObject*>(c)));
    if (!fn || !c->s->bridge->call_later(delay, fn.get()))
        PyErr_WriteUnraisable(reinterpret_cast<PyObject*>(c));
}

}  // namespace

void scope_on_disconnect(CycleObject* c) {
    CycleState& s = *c->s;
    if (s.finished || s.cancel_armed)
        return;
    s.cancel_armed = true;
    s.cancel_reason = CancelReason::disconnect;
    schedule_step(c, s.bridge->config().disconnect_grace);
}

void scope_cancel(CycleObject* c, CancelReason why) {
    CycleState& s = *c->s;
    if (s.finished)
        return;
    if (why == CancelReason::deadline)
        log::warning("Request deadline passed (--timeout-request {:g}s), cancelling: {} (id {})",
                     s.bridge->config().request_timeout, s.request_line,
                     s.channel ? s.channel->id() : 0);
    if (s.cancel_armed && s.cancel_attempts > 0)
        return;  // already escalating
    s.cancel_armed = true;
    s.cancel_reason = why;
    Ref r = Ref::steal(cancel_step(reinterpret_cast<PyObject*>(c), nullptr));
    if (!r)
        PyErr_WriteUnraisable(reinterpret_cast<PyObject*>(c));
}

const char* cancel_reason_text(CancelReason why) {
    switch (why) {
    case CancelReason::disconnect: return "the client disconnected";
    case CancelReason::deadline: return "its deadline (--timeout-request) passed";
    case CancelReason::shutdown: return "the server is shutting down";
    }
    return "";
}

}  // namespace narwhal::python
