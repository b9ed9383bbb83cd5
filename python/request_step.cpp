#include "python/request_step.hpp"

#include "asgi/errors.hpp"
#include "asgi/log.hpp"
#include "python/cycle.hpp"
#include "python/loop_services.hpp"
#include "python/py_ref.hpp"

namespace narwhal::python {

namespace {

// GC-tracked: the Task holds the step, the step holds the app's coroutine and the cycle,
// and both of those can lead back to the Task.
struct StepObject {
    PyObject_HEAD PyObject* iter;  // the app's coroutine, or its awaitable's __await__() iterator
    CycleObject* cycle;            // strong reference
    bool finished;
};

// Raises what throw(type[, value[, tb]]) was given.
PyObject* raise_thrown(PyObject* args) {
    PyObject *type, *value = nullptr, *tb = nullptr;
    if (!PyArg_UnpackTuple(args, "throw", 1, 3, &type, &value, &tb))
        return nullptr;
    if (PyExceptionInstance_Check(type))
        PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(type)), type);
    else
        PyErr_SetObject(type, value ? value : Py_None);
    return nullptr;
}

// An ASGI app returns None; anything else is a mistake worth a line (as uvicorn logs it),
// though the request itself ends as if it had returned None.
void check_returned_none(PyObject* result) {
    if (!result || result == Py_None)
        return;
    Ref text = Ref::steal(PyObject_Str(result));
    const char* utf8 = text ? PyUnicode_AsUTF8(text.get()) : nullptr;
    if (!utf8)
        PyErr_Clear();
    narwhal::log::error(fmt::runtime(asgi::errors::returned_value), utf8 ? utf8 : "?");
}

// Handles one result of driving the app. Returns what the Task's send/throw must see:
// the yielded value, or nullptr with StopIteration / CancelledError set.
PyObject* after_step(StepObject* self, PySendResult r, PyObject* result) {
    LoopServices& services = *self->cycle->s->services;
    services.step_end();
    if (r == PYGEN_NEXT)
        return result;
    self->finished = true;
    if (r == PYGEN_RETURN) {
        check_returned_none(result);
        Py_XDECREF(result);
        cycle_complete(self->cycle, nullptr, false);
        PyErr_SetNone(PyExc_StopIteration);
        return nullptr;
    }
    // The app raised. Cancellation is passed on so the Task ends cancelled; anything else
    // is reported here and the Task ends normally (nobody would retrieve its exception).
    Ref exc = Ref::steal(fetch_exception());
    bool cancelled = exc && PyObject_IsInstance(exc.get(), services.cancelled_error()) == 1;
    cycle_complete(self->cycle, exc.get(), cancelled);
    if (cancelled) {
        PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc.get())), exc.get());
        return nullptr;
    }
    PyErr_SetNone(PyExc_StopIteration);
    return nullptr;
}

PyObject* step_send(PyObject* o, PyObject* value) {
    auto* self = reinterpret_cast<StepObject*>(o);
    if (self->finished) {
        PyErr_SetNone(PyExc_StopIteration);
        return nullptr;
    }
    if (!self->cycle->s->services)
        return stopped();
    self->cycle->s->services->step_begin(self->cycle);
    PyObject* result = nullptr;
    PySendResult r = PyIter_Send(self->iter, value, &result);
    return after_step(self, r, result);
}

PyObject* step_iternext(PyObject* o) { return step_send(o, Py_None); }

PyObject* step_throw(PyObject* o, PyObject* args) {
    auto* self = reinterpret_cast<StepObject*>(o);
    if (self->finished)
        return raise_thrown(args);
    if (!self->cycle->s->services)
        return stopped();
    self->cycle->s->services->step_begin(self->cycle);
    Ref thrower = Ref::steal(PyObject_GetAttrString(self->iter, "throw"));
    PyObject* result = nullptr;
    PySendResult r;
    if (!thrower) {
        // An iterator without throw(): raise the exception as if from inside it.
        PyErr_Clear();
        raise_thrown(args);
        r = PYGEN_ERROR;
    } else {
        result = PyObject_Call(thrower.get(), args, nullptr);
        if (result) {
            r = PYGEN_NEXT;
        } else if (PyErr_ExceptionMatches(PyExc_StopIteration)) {
            // Returned while handling the exception: its value is the app's result.
            PyErr_Clear();
            Py_INCREF(Py_None);
            result = Py_None;
            r = PYGEN_RETURN;
        } else {
            r = PYGEN_ERROR;
        }
    }
    return after_step(self, r, result);
}

PyObject* step_close(PyObject* o, PyObject*) {
    auto* self = reinterpret_cast<StepObject*>(o);
    if (!self->iter)
        Py_RETURN_NONE;
    Ref closer = Ref::steal(PyObject_GetAttrString(self->iter, "close"));
    if (!closer) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    return PyObject_CallNoArgs(closer.get());
}

PyObject* step_await(PyObject* o) {
    Py_INCREF(o);
    return o;
}

int step_traverse(PyObject* o, visitproc visit, void* arg) {
    auto* self = reinterpret_cast<StepObject*>(o);
    Py_VISIT(Py_TYPE(o));
    Py_VISIT(self->iter);
    Py_VISIT(reinterpret_cast<PyObject*>(self->cycle));
    return 0;
}

// Breaks the cycles through the app's coroutine; the one through the cycle is broken by
// the cycle itself. A cleared step is finished.
int step_clear(PyObject* o) {
    auto* self = reinterpret_cast<StepObject*>(o);
    self->finished = true;
    Py_CLEAR(self->iter);
    return 0;
}

void step_dealloc(PyObject* o) {
    PyTypeObject* type = Py_TYPE(o);
    PyObject_GC_UnTrack(o);
    auto* self = reinterpret_cast<StepObject*>(o);
    Py_CLEAR(self->iter);
    Py_CLEAR(self->cycle);
    type->tp_free(o);
    Py_DECREF(type);
}

PyMethodDef step_methods[] = {
    {"send", step_send, METH_O, nullptr},
    {"throw", step_throw, METH_VARARGS, nullptr},
    {"close", step_close, METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

// What the app's coroutine awaits, so tools that walk cr_await chains (our task_stack,
// debuggers) see through this wrapper.
PyObject* step_get_await(PyObject* o, void*) {
    auto* self = reinterpret_cast<StepObject*>(o);
    if (!self->iter)
        Py_RETURN_NONE;
    Py_INCREF(self->iter);
    return self->iter;
}

PyGetSetDef step_getset[] = {
    {"cr_await", step_get_await, nullptr, nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyType_Slot step_slots[] = {
    {Py_tp_traverse, reinterpret_cast<void*>(step_traverse)},
    {Py_tp_clear, reinterpret_cast<void*>(step_clear)},
    {Py_tp_dealloc, reinterpret_cast<void*>(step_dealloc)},
    {Py_am_await, reinterpret_cast<void*>(step_await)},
    {Py_tp_iter, reinterpret_cast<void*>(step_await)},
    {Py_tp_iternext, reinterpret_cast<void*>(step_iternext)},
    {Py_tp_methods, step_methods},
    {Py_tp_getset, step_getset},
    {Py_tp_doc, const_cast<char*>("Runs one ASGI request's coroutine inside its Task.")},
    {0, nullptr},
};

PyType_Spec step_spec = {"narwhal.RequestStep", sizeof(StepObject), 0,
                         Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC |
                             Py_TPFLAGS_DISALLOW_INSTANTIATION | Py_TPFLAGS_IMMUTABLETYPE,
                         step_slots};

}  // namespace

int add_request_step_type(PyObject* module, NativeState& st) {
    st.step_type =
        reinterpret_cast<PyTypeObject*>(PyType_FromModuleAndSpec(module, &step_spec, nullptr));
    if (!st.step_type)
        return -1;
    // asyncio.Task accepts it as a coroutine.
    Ref abc = Ref::steal(PyImport_ImportModule("collections.abc"));
    Ref coroutine = abc ? Ref::steal(PyObject_GetAttrString(abc.get(), "Coroutine")) : Ref();
    Ref r = coroutine ? Ref::steal(PyObject_CallMethod(coroutine.get(), "register", "O",
                                                       reinterpret_cast<PyObject*>(st.step_type)))
                      : Ref();
    return r ? 0 : -1;
}

PyObject* new_request_step(CycleObject* cycle, PyObject* awaitable) {
    Ref iter;
    if (PyCoro_CheckExact(awaitable)) {
        iter = Ref::borrow(awaitable);
    } else {
        unaryfunc am_await =
            Py_TYPE(awaitable)->tp_as_async ? Py_TYPE(awaitable)->tp_as_async->am_await : nullptr;
        if (!am_await) {
            PyErr_Format(PyExc_TypeError, "ASGI callable returned a non-awaitable: '%s'",
                         Py_TYPE(awaitable)->tp_name);
            return nullptr;
        }
        iter = Ref::steal(am_await(awaitable));
        if (!iter)
            return nullptr;
    }
    auto* self = PyObject_GC_New(StepObject, cycle->s->services->types().step_type);
    if (!self)
        return nullptr;
    self->iter = iter.release();
    Py_INCREF(cycle);
    self->cycle = cycle;
    self->finished = false;
    PyObject_GC_Track(self);
    return reinterpret_cast<PyObject*>(self);
}

}  // namespace narwhal::python
