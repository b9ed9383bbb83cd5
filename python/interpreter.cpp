#include "python/interpreter.hpp"

#include "python/embedded_sources.hpp"

#include <pybind11/embed.h>

#include <stdexcept>
#include <string>

namespace py = pybind11;

namespace narwhal::python {

void link_native_module();

namespace {
// Executes each embedded module into sys.modules. The package module exists (empty,
// with a __path__) before its submodules run, and its own __init__ code runs last, so
// the list only has to order submodules by their imports.
void load_embedded_package() {
    PyObject* package = PyImport_AddModule("narwhal");  // borrowed
    if (!package)
        throw py::error_already_set();
    py::setattr(package, "__path__", py::list());
    for (const auto& mod : embedded_modules()) {
        std::string name(mod.name), filename(mod.filename), source(mod.source);
        py::object code = py::reinterpret_steal<py::object>(
            Py_CompileString(source.c_str(), filename.c_str(), Py_file_input));
        if (!code)
            throw py::error_already_set();
        PyObject* module = PyImport_ExecCodeModuleObject(py::str(name).ptr(), code.ptr(),
                                                          py::str(filename).ptr(), nullptr);
        if (!module)
            throw py::error_already_set();
        Py_DECREF(module);
    }
}
}  // namespace

void start_interpreter(int argc, const char* const* argv) {
    link_native_module();
    PyConfig config;
    PyConfig_InitPythonConfig(&config);
    config.install_signal_handlers = 0;
    config.parse_argv = 0;
    py::initialize_interpreter(&config, argc, argv, false);
    load_embedded_package();
}

void stop_interpreter() { py::finalize_interpreter(); }

}  // namespace narwhal::python
