// The ASGI message log of --log-level trace, as uvicorn's message logger writes it: one
// line per message a request's app receives or sends,
//   ASGI [3] Receive {'type': 'http.request', 'body': '<5 bytes>', 'more_body': False}
//   ASGI [3] Send {'type': 'http.response.start', 'status': 200, 'headers': '<...>'}
// where [3] is the request id and payloads are summarised by their size ('<N bytes>',
// '<N chars>'), so the log never holds request or response data. receive/send call in
// here only when enabled(): below trace level a request pays one branch per call.
#pragma once

#include "python/cycle.hpp"

#include <Python.h>

namespace narwhal::python::message_trace {

bool trace_level();

// Whether messages are logged. The log level is set before any interpreter starts and
// never changes, so it is read once.
inline bool enabled() {
    static const bool on = trace_level();
    return on;
}

// receive() returned `result` (not null): `self` when the message is already known (it
// is the awaitable's pending value), else a future that completes with it.
void received(const CycleState& s, PyObject* self, PyObject* result);
// send() was called with `message`, a dict.
void sent(const CycleState& s, PyObject* message);

}  // namespace narwhal::python::message_trace
