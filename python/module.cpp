// The `_narwhal` module the embedded package imports: logging into the server's
// logger, the version, and the Bridge handle the runtime drives.
#include "asgi/log.hpp"
#include "python/bridge.hpp"
#include "python/cycle.hpp"
#include "python/request_step.hpp"

#include <pybind11/embed.h>

namespace py = pybind11;
using narwhal::python::Bridge;

PYBIND11_EMBEDDED_MODULE(_narwhal, m) {
    if (!narwhal::python::ready_types() || !narwhal::python::ready_request_step_type())
        throw py::error_already_set();
    m.attr("version") = NARWHAL_VERSION;
    m.def(
        "log",
        [](int level, const std::string& message) {
            using narwhal::log::Level;
            Level l = level <= 1 ? Level::debug
                      : level == 2 ? Level::info
                      : level == 3 ? Level::warning
                                   : Level::error;
            if (narwhal::log::enabled(l))
                narwhal::log::write(l, message);
        },
        py::arg("level"), py::arg("message"));
    py::class_<Bridge>(m, "Bridge")
        .def_property_readonly("fd", &Bridge::fd)
        .def("drain", &Bridge::drain)
        .def("_flush", &Bridge::flush)
        .def("inflight", &Bridge::inflight)
        .def("idle",
             [](Bridge& b) {
                 PyObject* fut = b.idle();
                 if (!fut)
                     throw py::error_already_set();
                 return py::reinterpret_steal<py::object>(fut);
             })
        .def("cancel_all", &Bridge::cancel_all)
        .def("_beat", &Bridge::beat)
        .def("current_request",
             [](Bridge& b) { return py::reinterpret_steal<py::object>(b.current_request()); });
}

namespace narwhal::python {
// Referenced from start_interpreter so the linker keeps this file (and the module's
// registration with the interpreter's inittab) out of the static library.
void link_native_module() {}
}  // namespace narwhal::python
