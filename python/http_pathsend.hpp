// send() of the http.response.pathsend extension: the app names a file and the server
// sends it as the body. The file is opened here, in the app's await, so a bad path is
// the app's exception (ValueError for a relative path, the OSError for a missing or
// unreadable one) and never a half-sent response; the open descriptor then travels to
// the connection, which sends it with sendfile(2) (server/file_body.hpp).
#pragma once

#include "python/cycle.hpp"

#include <Python.h>

namespace narwhal::python {

// After the message's order was checked (asgi::ResponseState::check_order).
PyObject* http_pathsend(SendObject* so, PyObject* message);

}  // namespace narwhal::python
