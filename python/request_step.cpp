#include "python/request_step.hpp"

#include "python/bridge.hpp"
#include "python/cycle.hpp"
#include "python/py_ref.hpp"

namespace narwhal::python {

namespace {

struct StepObject {
    PyObject_HEAD
    PyObject* iter;       // the app's coroutine, or its awaitable's __await__() iterator
    CycleObject* cycle;   // strong reference
    bool finished;
};

// Handles one result of driving the app. Returns what the Task's send/throw must see:
// the yielded value, or nullptr with StopIteration / CancelledError set.
PyObject* after_step(StepObject* self, PySendResult r, PyObject* result) {
    Bridge* bridge = self->cycle->s->bridge;
    bridge->step_end();
    if (r == PYGEN_NEXT)
        return result;
    self->finished = true;
    if (r == PYGEN_RETURN) {
        Py_XDECREF(result);
        cycle_complete(self->cycle, nullptr, false);
        PyErr_SetNone(PyExc_StopIteration);
        return nullptr;
    }
    // The app raised. Cancellation is passed on so the Task ends cancelled; anything else
    // is reported here and the Task ends normally (nobody would retrieve its exception).
    Ref exc = Ref::steal(fetch_exception());
    bool cancelled = exc && PyObject_IsInstance(exc.get(), bridge->cancelled_error()) == 1;
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
    self->cycle->s->bridge->step_begin(self->cycle);
    PyObject* result = nullptr;
    PySendResult r = PyIter_Send(self->iter, value, &result);
    return after_step(self, r, result);
}

PyObject* step_iternext(PyObject* o) { return step_send(o, Py_None); }

PyObject* step_throw(PyObject* o, PyObject* args) {
    auto* self = reinterpret_cast<StepObject*>(o);
    if (self->finished) {
        PyObject *type, *value = nullptr, *tb = nullptr;
        if (!PyArg_UnpackTuple(args, "throw", 1, 3, &type, &value, &tb))
            return nullptr;
        if (PyExceptionInstance_Check(type))
            PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(type)), type);
        else
            PyErr_SetObject(type, value ? value : Py_None);
        return nullptr;
    }
    self->cycle->s->bridge->step_begin(self->cycle);
    Ref thrower = Ref::steal(PyObject_GetAttrString(self->iter, "throw"));
    PyObject* result = nullptr;
    PySendResult r;
    if (!thrower) {
        // An iterator without throw(): raise the exception as if from inside it.
        PyErr_Clear();
        PyObject *type, *value = nullptr, *tb = nullptr;
        if (!PyArg_UnpackTuple(args, "throw", 1, 3, &type, &value, &tb)) {
            r = PYGEN_ERROR;
        } else {
            if (PyExceptionInstance_Check(type))
                PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(type)), type);
            else
                PyErr_SetObject(type, value ? value : Py_None);
            r = PYGEN_ERROR;
        }
    } else {
        result = PyObject_Call(thrower.get(), args, nullptr);
        if (result) {
            r = PYGEN_NEXT;
        } else if (PyErr_ExceptionMatches(PyExc_StopIteration)) {
            // Returned while handling the exception: its value is the app's result.
            PyObject *t, *v, *tb;
            PyErr_Fetch(&t, &v, &tb);
            Py_XDECREF(t);
            Py_XDECREF(v);
            Py_XDECREF(tb);
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

void step_dealloc(PyObject* o) {
    auto* self = reinterpret_cast<StepObject*>(o);
    Py_XDECREF(self->iter);
    Py_XDECREF(reinterpret_cast<PyObject*>(self->cycle));
    Py_TYPE(o)->tp_free(o);
}

PyMethodDef step_methods[] = {
    {"send", step_send, METH_O, nullptr},
    {"throw", step_throw, METH_VARARGS, nullptr},
    {"close", step_close, METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyAsyncMethods step_async = {step_await, nullptr, nullptr, nullptr};

// What the app's coroutine awaits, so tools that walk cr_await chains (our task_stack,
// debuggers) see through this wrapper.
PyObject* step_get_await(PyObject* o, void*) {
    auto* self = reinterpret_cast<StepObject*>(o);
    Py_INCREF(self->iter);
    return self->iter;
}

PyGetSetDef step_getset[] = {
    {"cr_await", step_get_await, nullptr, nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyTypeObject step_type = {PyVarObject_HEAD_INIT(nullptr, 0)};

}  // namespace

bool ready_request_step_type() {
    step_type.tp_name = "narwhal.RequestStep";
    step_type.tp_basicsize = sizeof(StepObject);
    step_type.tp_flags = Py_TPFLAGS_DEFAULT;
    step_type.tp_dealloc = step_dealloc;
    step_type.tp_as_async = &step_async;
    step_type.tp_iter = step_await;
    step_type.tp_iternext = step_iternext;
    step_type.tp_methods = step_methods;
    step_type.tp_getset = step_getset;
    step_type.tp_doc = "Runs one ASGI request's coroutine inside its Task.";
    if (PyType_Ready(&step_type) < 0)
        return false;
    // asyncio.Task accepts it as a coroutine.
    Ref abc = Ref::steal(PyImport_ImportModule("collections.abc"));
    Ref coroutine = abc ? Ref::steal(PyObject_GetAttrString(abc.get(), "Coroutine")) : Ref();
    Ref r = coroutine ? Ref::steal(PyObject_CallMethod(coroutine.get(), "register", "O",
                                                       reinterpret_cast<PyObject*>(&step_type)))
                      : Ref();
    return r.get() != nullptr;
}

PyObject* new_request_step(CycleObject* cycle, PyObject* awaitable) {
    Ref iter;
    if (PyCoro_CheckExact(awaitable)) {
        iter = Ref::borrow(awaitable);
    } else {
        unaryfunc am_await = Py_TYPE(awaitable)->tp_as_async ? Py_TYPE(awaitable)->tp_as_async->am_await
                                                             : nullptr;
        if (!am_await) {
            PyErr_Format(PyExc_TypeError, "ASGI callable returned a non-awaitable: '%s'",
                         Py_TYPE(awaitable)->tp_name);
            return nullptr;
        }
        iter = Ref::steal(am_await(awaitable));
        if (!iter)
            return nullptr;
    }
    auto* self = PyObject_New(StepObject, &step_type);
    if (!self)
        return nullptr;
    self->iter = iter.release();
    Py_INCREF(cycle);
    self->cycle = cycle;
    self->finished = false;
    return reinterpret_cast<PyObject*>(self);
}

}  // namespace narwhal::python
