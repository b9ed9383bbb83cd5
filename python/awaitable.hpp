// The await protocol shared by the native `receive` and `send` (NGINX Unit's trick):
// when the answer is known at call time, the call returns the object itself as its
// awaitable, holding the value the await completes with. Awaiting it then completes at
// once: no future, no allocation. Only a real wait parks an asyncio future, which the
// helpers below resolve or fail when the matching event arrives.
#pragma once

#include "python/names.hpp"
#include "python/py_ref.hpp"

#include <Python.h>

namespace narwhal::python {

class LoopServices;

// The head of every object that awaits itself; the type adds the awaitable_* slots.
struct AwaitableObject {
    PyObject_HEAD PyObject*
        pending;  // what the next fast-path await returns (owned); nullptr: None
};

// Returns `self` as its own awaitable completing with `value_stolen`, or, if `self`
// still holds a value nobody awaited, a done future with it. nullptr (error set) when
// `value_stolen` is nullptr.
PyObject* ready(PyObject* self, PyObject* value_stolen, LoopServices& services);

// `self` as its own awaitable completing with None.
inline PyObject* ready_none(PyObject* self) {
    Py_INCREF(self);
    return self;
}

// Whether `fut` still waits (the app may have cancelled it meanwhile). false with an
// error set if asking failed.
bool future_pending(const Names& n, PyObject* fut);
// Takes the future out of `waiter` and sets its result / exception unless it is done.
void resolve(const Names& n, Ref& waiter, PyObject* value);
void fail_waiter(const Names& n, Ref& waiter, PyObject* exc);

// Slots of a self-awaiting type: am_await and tp_iter (the object itself), am_send,
// tp_iternext, and the generator-like send/throw/close methods.
PyObject* awaitable_await(PyObject* self);
PyObject* awaitable_iternext(PyObject* self);
PySendResult awaitable_send(PyObject* self, PyObject* arg, PyObject** result);
extern PyMethodDef awaitable_methods[];

}  // namespace narwhal::python
