#include "python/message_trace.hpp"

#include "asgi/log.hpp"
#include "python/py_ref.hpp"

#include <fmt/format.h>

#include <string_view>

namespace narwhal::python::message_trace {

namespace {

uint64_t request_id(const CycleState& s) { return s.channel ? s.channel->id() : 0; }

// `message` with its payloads replaced by their sizes, as a Python repr. Empty when the
// message cannot be shown (the error is cleared: tracing never disturbs the app).
std::string summary(PyObject* message) {
    if (!PyDict_Check(message)) {
        Ref text = Ref::steal(PyObject_Repr(message));
        const char* s = text ? PyUnicode_AsUTF8(text.get()) : nullptr;
        std::string out = s ? s : "";
        PyErr_Clear();
        return out;
    }
    Ref shown = Ref::steal(PyDict_New());
    if (!shown) {
        PyErr_Clear();
        return {};
    }
    PyObject* key;
    PyObject* value;
    Py_ssize_t pos = 0;
    while (PyDict_Next(message, &pos, &key, &value)) {
        Ref replaced;
        if (PyUnicode_Check(key)) {
            std::string_view k = PyUnicode_AsUTF8(key) ? PyUnicode_AsUTF8(key) : "";
            if ((k == "body" || k == "bytes") && PyObject_CheckBuffer(value)) {
                Py_ssize_t n = PyObject_Length(value);
                replaced = Ref::steal(PyUnicode_FromFormat("<%zd bytes>", n < 0 ? 0 : n));
            } else if (k == "text" && PyUnicode_Check(value)) {
                replaced =
                    Ref::steal(PyUnicode_FromFormat("<%zd chars>", PyUnicode_GET_LENGTH(value)));
            } else if (k == "headers") {
                replaced = Ref::steal(PyUnicode_FromString("<...>"));
            }
        }
        if (PyDict_SetItem(shown.get(), key, replaced ? replaced.get() : value) < 0)
            break;
    }
    Ref text = Ref::steal(PyObject_Repr(shown.get()));
    const char* s = text ? PyUnicode_AsUTF8(text.get()) : nullptr;
    std::string out = s ? s : "";
    PyErr_Clear();
    return out;
}

void write(uint64_t id, std::string_view direction, PyObject* message) {
    log::write(log::Level::trace, fmt::format("ASGI [{}] {} {}", id, direction, summary(message)));
}

// The done-callback of a receive() future; `id` is the request id (a Python int).
PyObject* on_received(PyObject* id, PyObject* fut) {
    Ref cancelled = Ref::steal(PyObject_CallMethod(fut, "cancelled", nullptr));
    if (cancelled && cancelled.get() == Py_False) {
        Ref message = Ref::steal(PyObject_CallMethod(fut, "result", nullptr));
        if (message)
            write(PyLong_AsUnsignedLongLong(id), "Receive", message.get());
    }
    PyErr_Clear();
    Py_RETURN_NONE;
}

PyMethodDef on_received_def = {"_trace_received", on_received, METH_O, nullptr};

}  // namespace

bool trace_level() { return log::enabled(log::Level::trace); }

void received(const CycleState& s, PyObject* self, PyObject* result) {
    const uint64_t id = request_id(s);
    if (result == self) {
        PyObject* pending = reinterpret_cast<AwaitableObject*>(self)->pending;
        write(id, "Receive", pending ? pending : Py_None);
        return;
    }
    // A future: the message is known when it completes (at once, if it is done already).
    Ref py_id = Ref::steal(PyLong_FromUnsignedLongLong(id));
    Ref callback = py_id ? Ref::steal(PyCFunction_New(&on_received_def, py_id.get())) : Ref();
    Ref r = callback
                ? Ref::steal(PyObject_CallMethod(result, "add_done_callback", "O", callback.get()))
                : Ref();
    PyErr_Clear();
}

void sent(const CycleState& s, PyObject* message) { write(request_id(s), "Send", message); }

}  // namespace narwhal::python::message_trace
