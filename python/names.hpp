// Interned strings and constant objects used on every request, created once per
// interpreter (they live in the `_narwhal` module's state, native_module.hpp) so that
// building a scope or a message never allocates a key.
#pragma once

#include <Python.h>

#include <string_view>
#include <unordered_map>
#include <vector>

namespace narwhal::python {

struct Names {
    // Check PyErr_Occurred() afterwards: a failed intern leaves its member null.
    Names();
    ~Names();
    Names(const Names&) = delete;
    Names& operator=(const Names&) = delete;

    // dict keys
    PyObject *type, *asgi, *http_version, *server, *client, *scheme, *method, *root_path, *path,
        *raw_path, *query_string, *headers, *state, *extensions, *version, *spec_version, *body,
        *more_body, *status;
    // WebSocket message keys
    PyObject *text, *bytes, *code, *reason, *subprotocol, *subprotocols;
    // values
    PyObject *http, *http_request, *http_disconnect, *response_start, *response_body, *v3_0,
        *spec_2_4, *v1_1, *v1_0, *scheme_http, *scheme_https, *empty_bytes;
    // WebSocket values: the scope type, schemes, the denial-response extension's key and
    // the message types the server sends.
    PyObject *websocket, *scheme_ws, *scheme_wss, *websocket_http_response, *websocket_connect,
        *websocket_receive, *websocket_disconnect;
    // method names
    PyObject *set_result, *set_exception, *done, *cancel, *add_done_callback, *cancelled,
        *exception;

    // Cached bytes for the header names browsers and clients send most; others are
    // created per request.
    PyObject* header_name(std::string_view lowered) const;
    // Cached str for common methods; others are created per request.
    PyObject* method_name(std::string_view method) const;

private:
    PyObject* own(PyObject* o);
    PyObject* intern(const char* s) { return own(PyUnicode_InternFromString(s)); }
    std::vector<PyObject*> owned_;  // every reference above, released by the destructor
    std::unordered_map<std::string_view, PyObject*> header_names_;
    std::unordered_map<std::string_view, PyObject*> methods_;
};

}  // namespace narwhal::python
