#include "python/awaitable.hpp"

#include "python/loop_services.hpp"

namespace narwhal::python {

namespace {

// The value a fast-path await completes with: the held message for receive(), None
// for send() (which holds nothing).
PyObject* take_pending(PyObject* self) {
    auto* a = reinterpret_cast<AwaitableObject*>(self);
    if (PyObject* v = a->pending) {
        a->pending = nullptr;
        return v;
    }
    Py_RETURN_NONE;
}

PyObject* method_send(PyObject* self, PyObject*) { return awaitable_iternext(self); }

PyObject* method_throw(PyObject* self, PyObject* args) {
    PyObject *type, *value = nullptr, *tb = nullptr;
    if (!PyArg_UnpackTuple(args, "throw", 1, 3, &type, &value, &tb))
        return nullptr;
    Py_DECREF(take_pending(self));
    if (PyExceptionInstance_Check(type)) {
        PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(type)), type);
    } else {
        PyErr_SetObject(type, value ? value : Py_None);
    }
    return nullptr;
}

PyObject* method_close(PyObject* self, PyObject*) {
    Py_DECREF(take_pending(self));
    Py_RETURN_NONE;
}

}  // namespace

PyMethodDef awaitable_methods[] = {
    {"send", method_send, METH_O, nullptr},
    {"throw", method_throw, METH_VARARGS, nullptr},
    {"close", method_close, METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyObject* ready(PyObject* self, PyObject* value_stolen, LoopServices& services) {
    Ref value = Ref::steal(value_stolen);
    if (!value)
        return nullptr;
    auto* a = reinterpret_cast<AwaitableObject*>(self);
    if (!a->pending) {
        a->pending = value.release();
        Py_INCREF(self);
        return self;
    }
    Ref fut = Ref::steal(services.create_future());
    if (!fut)
        return nullptr;
    Ref r =
        Ref::steal(PyObject_CallMethodOneArg(fut.get(), services.names().set_result, value.get()));
    if (!r)
        return nullptr;
    return fut.release();
}

bool future_pending(const Names& n, PyObject* fut) {
    Ref done = Ref::steal(PyObject_CallMethodNoArgs(fut, n.done));
    if (!done)
        return false;
    return done.get() == Py_False;
}

namespace {
// Completes a pending future with `method` (set_result / set_exception) and drops the
// reference; a future already done or cancelled is left alone.
void settle(const Names& n, Ref& waiter, PyObject* method, PyObject* arg) {
    Ref fut = std::move(waiter);
    if (!fut)
        return;
    if (!future_pending(n, fut.get())) {
        PyErr_Clear();
        return;
    }
    Ref r = Ref::steal(PyObject_CallMethodOneArg(fut.get(), method, arg));
    if (!r)
        PyErr_WriteUnraisable(fut.get());
}
}  // namespace

void resolve(const Names& n, Ref& waiter, PyObject* value) {
    settle(n, waiter, n.set_result, value);
}

void fail_waiter(const Names& n, Ref& waiter, PyObject* exc) {
    settle(n, waiter, n.set_exception, exc);
}

PyObject* awaitable_await(PyObject* self) {
    Py_INCREF(self);
    return self;
}

PySendResult awaitable_send(PyObject* self, PyObject*, PyObject** result) {
    *result = take_pending(self);
    return PYGEN_RETURN;
}

PyObject* awaitable_iternext(PyObject* self) {
    PyObject* result = take_pending(self);
    if (result == Py_None) {
        Py_DECREF(result);
        return nullptr;  // StopIteration(None) without creating it
    }
    // StopIteration(value): wrap in a tuple so dict/tuple values are not unpacked.
    PyObject* exc = PyObject_CallOneArg(PyExc_StopIteration, result);
    Py_DECREF(result);
    if (exc) {
        PyErr_SetObject(PyExc_StopIteration, exc);
        Py_DECREF(exc);
    }
    return nullptr;
}

}  // namespace narwhal::python
