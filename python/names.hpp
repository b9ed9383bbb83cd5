// Interned strings and constant objects used on every request, created once per
// interpreter so building a scope or a message never allocates a key.
#pragma once

#include <Python.h>

#include <string_view>
#include <unordered_map>

namespace narwhal::python {

struct Names {
    Names();
    ~Names();
    Names(const Names&) = delete;
    Names& operator=(const Names&) = delete;

    // dict keys
    PyObject *type, *asgi, *http_version, *server, *client, *scheme, *method, *root_path, *path,
        *raw_path, *query_string, *headers, *state, *extensions, *version, *spec_version, *body,
        *more_body, *status;
    // values
    PyObject *http, *http_request, *http_disconnect, *response_start, *response_body, *v3_0,
        *spec_2_4, *v1_1, *v1_0, *scheme_http, *scheme_https, *empty_bytes;
    // method names
    PyObject *set_result, *set_exception, *done, *cancel, *add_done_callback, *cancelled,
        *exception;

    // Cached bytes for the header names browsers and clients send most; others are
    // created per request.
    PyObject* header_name(std::string_view lowered) const;
    // Cached str for common methods; others are created per request.
    PyObject* method_name(std::string_view method) const;

private:
    PyObject* intern(const char* s);
    std::unordered_map<std::string_view, PyObject*> header_names_;
    std::unordered_map<std::string_view, PyObject*> methods_;
};

}  // namespace narwhal::python
