// A minimal owning reference for the raw C-API code (pybind11's py::object is for the
// start-up code in the main interpreter only; here we want zero overhead, explicit
// steal/borrow, and code that runs in any interpreter).
#pragma once

#include <Python.h>

#include <string_view>
#include <utility>

namespace narwhal::python {

class Ref {
public:
    Ref() = default;
    static Ref steal(PyObject* o) { return Ref(o); }
    static Ref borrow(PyObject* o) {
        Py_XINCREF(o);
        return Ref(o);
    }
    Ref(const Ref& other) : p_(other.p_) { Py_XINCREF(p_); }
    Ref(Ref&& other) noexcept : p_(std::exchange(other.p_, nullptr)) {}
    Ref& operator=(Ref other) noexcept {
        std::swap(p_, other.p_);
        return *this;
    }
    ~Ref() { Py_XDECREF(p_); }

    PyObject* get() const { return p_; }
    PyObject* release() { return std::exchange(p_, nullptr); }
    explicit operator bool() const { return p_ != nullptr; }

private:
    explicit Ref(PyObject* o) : p_(o) {}
    PyObject* p_ = nullptr;
};

}  // namespace narwhal::python

namespace narwhal::python {

// The exception being raised, normalised, as a new reference (nullptr if none); clears
// the error indicator.
inline PyObject* fetch_exception() {
#if PY_VERSION_HEX >= 0x030C0000
    return PyErr_GetRaisedException();
#else
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (!type)
        return nullptr;
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb && value)
        PyException_SetTraceback(value, tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return value;
#endif
}

// Raises `type(message)` and returns nullptr, for `return raise(...)` from a C-API function.
inline PyObject* raise(PyObject* type, std::string_view message) {
    PyObject* text =
        PyUnicode_FromStringAndSize(message.data(), static_cast<Py_ssize_t>(message.size()));
    if (text) {
        PyErr_SetObject(type, text);
        Py_DECREF(text);
    }
    return nullptr;
}

}  // namespace narwhal::python
