// send() of the narwhal.pubsub extension (asgi/pubsub.hpp), for http and websocket
// scopes alike: the message is checked here and handed to the connection as a command,
// in order with the cycle's other messages; the connection's I/O thread subscribes the
// socket or publishes. No Python runs per subscriber.
#pragma once

#include "python/cycle.hpp"

#include <Python.h>

#include <string_view>

namespace narwhal::python {

// `type` starts with asgi::pubsub_prefix.
PyObject* pubsub_send(SendObject* so, PyObject* message, std::string_view type);

}  // namespace narwhal::python
