// The coroutine a request's Task runs: a native wrapper (narwhal.RequestStep) around the
// app's coroutine (or awaitable). Each step marks which request the loop is running
// (for the watchdog), and the app's end (return, exception, cancellation) is handled
// right there, inside the Task's last step: no done-callback, no extra loop iteration
// per request.
#pragma once

#include <Python.h>

namespace narwhal::python {

struct CycleObject;
struct NativeState;

// Creates narwhal.RequestStep for `module` into `st` and registers it as a
// collections.abc.Coroutine, so asyncio.Task accepts it. -1 with an error set.
int add_request_step_type(PyObject* module, NativeState& st);
// New reference: a coroutine-like object driving `awaitable` for `cycle`, or nullptr
// with an error set (the awaitable has no __await__).
PyObject* new_request_step(CycleObject* cycle, PyObject* awaitable);

}  // namespace narwhal::python
