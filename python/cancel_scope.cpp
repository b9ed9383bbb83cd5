#include "python/cancel_scope.hpp"

#include "asgi/log.hpp"
#include "python/cycle.hpp"
#include "python/loop_services.hpp"

#include <fmt/format.h>

namespace narwhal::python {

namespace {

// narwhal.CancelStep: one scheduled escalation step of a cycle's scope.
struct CancelStepObject {
    PyObject_HEAD CycleObject* cycle;  // strong reference
};

void schedule_step(CycleObject* c, double delay);

// One escalation step.
void cancel_step(CycleObject* c) {
    CycleState& s = *c->s;
    if (s.finished || !s.task || !s.services)
        return;
    LoopServices& services = *s.services;
    if (s.cancel_attempts >= cancel_attempts) {
        services.abandon(c);
        return;
    }
    if (s.cancel_attempts++ == 0)
        services.stats().cancelled.fetch_add(1, std::memory_order_relaxed);
    else
        log::warning("Request task ignored cancellation, cancelling again ({} of {}): {} ({})",
                     s.cancel_attempts, cancel_attempts, s.request_line(), s.label());
    Ref r = Ref::steal(PyObject_CallMethodNoArgs(s.task.get(), services.names().cancel));
    if (!r)
        PyErr_WriteUnraisable(s.task.get());
    schedule_step(c, services.config().cancel_grace);
}

PyObject* step_call(PyObject* self, PyObject* args, PyObject* kwargs) {
    if ((args && PyTuple_GET_SIZE(args) != 0) || (kwargs && PyDict_GET_SIZE(kwargs) != 0))
        return raise(PyExc_TypeError, "a cancel step takes no arguments");
    cancel_step(reinterpret_cast<CancelStepObject*>(self)->cycle);
    Py_RETURN_NONE;
}

int step_traverse(PyObject* self, visitproc visit, void* arg) {
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(reinterpret_cast<PyObject*>(reinterpret_cast<CancelStepObject*>(self)->cycle));
    return 0;
}

void step_dealloc(PyObject* self) {
    PyTypeObject* type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    Py_CLEAR(reinterpret_cast<CancelStepObject*>(self)->cycle);
    type->tp_free(self);
    Py_DECREF(type);
}

PyType_Slot step_slots[] = {
    {Py_tp_call, reinterpret_cast<void*>(step_call)},
    {Py_tp_traverse, reinterpret_cast<void*>(step_traverse)},
    {Py_tp_dealloc, reinterpret_cast<void*>(step_dealloc)},
    {Py_tp_doc, const_cast<char*>("One escalation step of a request's cancel scope.")},
    {0, nullptr},
};

PyType_Spec step_spec = {"narwhal.CancelStep", sizeof(CancelStepObject), 0,
                         Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC |
                             Py_TPFLAGS_DISALLOW_INSTANTIATION | Py_TPFLAGS_IMMUTABLETYPE,
                         step_slots};

void schedule_step(CycleObject* c, double delay) {
    LoopServices& services = *c->s->services;
    auto* step = PyObject_GC_New(CancelStepObject, services.types().cancel_step_type);
    if (step) {
        Py_INCREF(c);
        step->cycle = c;
        PyObject_GC_Track(step);
    }
    Ref fn = Ref::steal(reinterpret_cast<PyObject*>(step));
    if (!fn || !services.call_later(delay, fn.get()))
        PyErr_WriteUnraisable(reinterpret_cast<PyObject*>(c));
}

}  // namespace

int add_cancel_step_type(PyObject* module, NativeState& st) {
    st.cancel_step_type =
        reinterpret_cast<PyTypeObject*>(PyType_FromModuleAndSpec(module, &step_spec, nullptr));
    return st.cancel_step_type ? 0 : -1;
}

void scope_on_disconnect(CycleObject* c) {
    CycleState& s = *c->s;
    if (s.finished || s.cancel_armed)
        return;
    s.cancel_armed = true;
    s.cancel_reason = CancelReason::disconnect;
    schedule_step(c, s.services->config().disconnect_grace);
}

void scope_cancel(CycleObject* c, CancelReason why) {
    CycleState& s = *c->s;
    if (s.finished)
        return;
    if (why == CancelReason::deadline)
        log::warning("Request deadline passed (--timeout-request {:g}s), cancelling: {} ({})",
                     s.services->config().request_timeout, s.request_line(), s.label());
    if (s.cancel_armed && s.cancel_attempts > 0)
        return;  // already escalating
    s.cancel_armed = true;
    s.cancel_reason = why;
    cancel_step(c);
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
