#include "python/response_headers.hpp"

#include "asgi/errors.hpp"
#include "python/py_ref.hpp"

#include <charconv>
#include <string>
#include <string_view>

namespace narwhal::python {

bool parse_headers(PyObject* headers, asgi::Command& cmd, std::optional<uint64_t>& length) {
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
        std::string_view nv(PyBytes_AS_STRING(name), static_cast<std::size_t>(PyBytes_GET_SIZE(name)));
        std::string_view vv(PyBytes_AS_STRING(value), static_cast<std::size_t>(PyBytes_GET_SIZE(value)));
        std::string lowered(nv);
        for (char& ch : lowered) {
            unsigned char u = static_cast<unsigned char>(ch);
            // RFC 9110 token characters only.
            bool ok = (u >= 'a' && u <= 'z') || (u >= '0' && u <= '9') ||
                      std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(u)) != std::string_view::npos;
            if (u >= 'A' && u <= 'Z') {
                ch = static_cast<char>(u + 32);
                ok = true;
            }
            if (!ok) {
                raise(PyExc_RuntimeError, asgi::errors::invalid_header_name);
                return false;
            }
        }
        if (lowered.empty()) {
            raise(PyExc_RuntimeError, asgi::errors::invalid_header_name);
            return false;
        }
        for (char ch : vv) {
            if (ch == '\r' || ch == '\n' || ch == '\0') {
                raise(PyExc_RuntimeError, asgi::errors::invalid_header_value);
                return false;
            }
        }
        if (lowered == "content-length") {
            uint64_t v = 0;
            auto [p, err] = std::from_chars(vv.data(), vv.data() + vv.size(), v);
            if (err == std::errc() && p == vv.data() + vv.size())
                length = v;
        }
        cmd.headers.emplace_back(std::move(lowered), std::string(vv));
    }
    return !PyErr_Occurred();
}

}  // namespace narwhal::python
