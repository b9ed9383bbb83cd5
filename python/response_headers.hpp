// The `headers` of a response message (http.response.start, websocket.accept,
// websocket.http.response.start) taken from the app's message into a command. The
// rules (token names, no CR/LF/NUL, one Content-Length) and what the headers mean for
// the framing are asgi::ResponseHeaders'; this only walks the Python objects.
#pragma once

#include "asgi/events.hpp"

#include <Python.h>

namespace narwhal::python {

// Checks every (name, value) pair of `headers` (borrowed; nullptr or None: the app sent
// none) and moves them, names lowered, with the decided HeaderFacts into `cmd`. false
// with TypeError/RuntimeError set (uvicorn's wording, asgi/errors.hpp) on a malformed
// list, a non-bytes item or an invalid name, value or Content-Length.
bool take_response_headers(PyObject* headers, asgi::Command& cmd);

}  // namespace narwhal::python
