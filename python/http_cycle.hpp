// receive() and send() for the http scope: body delivery with read-window credit and
// `Expect: 100-continue`, response messages checked against asgi::ResponseState and
// turned into commands, the held start, and send backpressure.
#pragma once

#include "python/cycle.hpp"

#include <Python.h>

#include <string>
#include <string_view>

namespace narwhal::python {

// The calls, after cycle.cpp checked the arguments (and, for send, the message's type).
PyObject* http_receive(CycleObject* c);
PyObject* http_send(SendObject* so, PyObject* message, std::string_view type);

// Dispatcher -> cycle: body bytes arrived (`more`: more will follow).
void cycle_on_body(CycleObject* c, std::string&& body, bool more);
// Resolves a waiting receive() with http.disconnect.
void wake_receiver_with_disconnect(CycleState& s);

}  // namespace narwhal::python
