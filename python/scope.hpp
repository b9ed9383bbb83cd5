// Builds the ASGI HTTP scope dict (spec 2.4) from a parsed request head.
#pragma once

#include "asgi/events.hpp"
#include "python/names.hpp"

#include <Python.h>

#include <string>

namespace narwhal::python {

// New reference, or nullptr with a Python error set. `state` is the lifespan state
// dict (shallow-copied into the scope) or nullptr.
PyObject* build_http_scope(const Names& n, const asgi::RequestHead& head, const asgi::Peer& peer,
                           const std::string& root_path, PyObject* state);

// The ASGI websocket scope: the HTTP one without `method`, with scheme ws/wss, the
// requested subprotocols, and the denial-response extension.
PyObject* build_websocket_scope(const Names& n, const asgi::RequestHead& head,
                                const asgi::Peer& peer, const std::string& root_path,
                                PyObject* state);

}  // namespace narwhal::python
