// The `headers` of a response message (http.response.start, websocket.accept,
// websocket.http.response.start) checked and copied into a command. One function in
// one place: it is to become a call into the ASGI message rules in asgi/.
#pragma once

#include "asgi/events.hpp"

#include <Python.h>

#include <cstdint>
#include <optional>

namespace narwhal::python {

// Appends each (name, value) pair, the name lowered, to `cmd.headers`; sets `length` from
// a valid content-length. false with TypeError/RuntimeError set (uvicorn's wording,
// asgi/errors.hpp) on a malformed list, a non-bytes item or an invalid name or value.
bool parse_headers(PyObject* headers, asgi::Command& cmd, std::optional<uint64_t>& length);

}  // namespace narwhal::python
