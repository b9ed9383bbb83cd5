// A request's cancel scope on the interpreter side. Reasons to cancel: the client went
// away (after --timeout-disconnect-grace), the deadline passed (--timeout-request), or
// the server is shutting down. Cancellation is level-triggered: the task is cancelled
// again every --timeout-cancel-grace while it keeps running, and after the third time
// the request is abandoned: its connection is closed, its slot released, and the task
// reported with its stack as having ignored cancellation. Each escalation step is a
// narwhal.CancelStep callable scheduled with loop.call_later.
#pragma once

#include <Python.h>

namespace narwhal::python {

struct CycleObject;
struct NativeState;

enum class CancelReason { disconnect, deadline, shutdown };

// The client disconnected: arm the grace timer.
void scope_on_disconnect(CycleObject* c);
// Cancel now (deadline or shutdown), then escalate.
void scope_cancel(CycleObject* c, CancelReason why);

const char* cancel_reason_text(CancelReason why);

// How many cancellations a task may ignore before it is abandoned.
inline constexpr int cancel_attempts = 3;

// Creates narwhal.CancelStep for `module` into `st`. -1 with an error set.
int add_cancel_step_type(PyObject* module, NativeState& st);

}  // namespace narwhal::python
