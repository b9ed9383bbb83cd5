#include "python/response_headers.hpp"

#include "asgi/errors.hpp"
#include "asgi/response_headers.hpp"
#include "python/py_ref.hpp"

#include <string_view>

namespace narwhal::python {

namespace {
std::string_view bytes_view(PyObject* b) {
    return {PyBytes_AS_STRING(b), static_cast<std::size_t>(PyBytes_GET_SIZE(b))};
}
}  // namespace

bool take_response_headers(PyObject* headers, asgi::Command& cmd) {
    asgi::ResponseHeaders check;
    if (headers && headers != Py_None) {
        Ref it = Ref::steal(PyObject_GetIter(headers));
        if (!it) {
            PyErr_Clear();
            raise(PyExc_TypeError, asgi::errors::headers_not_iterable);
            return false;
        }
        while (Ref item = Ref::steal(PyIter_Next(it.get()))) {
            Ref pair = Ref::steal(PySequence_Fast(item.get(), ""));
            if (!pair || PySequence_Fast_GET_SIZE(pair.get()) != 2) {
                PyErr_Clear();
                raise(PyExc_TypeError, asgi::errors::headers_not_iterable);
                return false;
            }
            PyObject* name = PySequence_Fast_GET_ITEM(pair.get(), 0);
            PyObject* value = PySequence_Fast_GET_ITEM(pair.get(), 1);
            if (!PyBytes_Check(name) || !PyBytes_Check(value)) {
                raise(PyExc_TypeError, asgi::errors::header_not_bytes);
                return false;
            }
            if (auto error = check.add(bytes_view(name), bytes_view(value))) {
                raise(PyExc_RuntimeError, *error);
                return false;
            }
        }
        if (PyErr_Occurred())
            return false;
    }
    check.finish(cmd);
    return true;
}

}  // namespace narwhal::python
