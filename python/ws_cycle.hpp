// receive() and send() for the websocket scope: websocket.connect, queued messages with
// one read credit each, websocket.disconnect with the close code; accept, send, close and
// the denial response (websocket.http.response.*) checked by asgi::WebSocketState and
// turned into commands.
#pragma once

#include "python/cycle.hpp"

#include <Python.h>

#include <string>
#include <string_view>

namespace narwhal::python {

// The calls, after cycle.cpp checked the arguments (and, for send, the message's type).
PyObject* ws_receive(CycleObject* c);
PyObject* ws_send(SendObject* so, PyObject* message, std::string_view type);

// Dispatcher -> cycle: a message arrived; the socket closed with `code` (0: none given).
void cycle_on_ws_message(CycleObject* c, std::string&& data, bool text);
void cycle_on_ws_closed(CycleObject* c, int code);

}  // namespace narwhal::python
