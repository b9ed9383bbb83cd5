#include "python/interpreter.hpp"

#include "python/embedded_sources.hpp"
#include "python/native_module.hpp"
#include "python/py_ref.hpp"

#include <pybind11/embed.h>

#include <string>

namespace py = pybind11;

namespace narwhal::python {

// Executes each embedded module into sys.modules. The package module exists (empty,
// with a __path__) before its submodules run, and its own __init__ code runs last, so
// the list only has to order submodules by their imports.
bool load_embedded_package() {
    PyObject* package = PyImport_AddModule("narwhal");  // borrowed
    if (!package)
        return false;
    Ref path = Ref::steal(PyList_New(0));
    if (!path || PyObject_SetAttrString(package, "__path__", path.get()) < 0)
        return false;
    for (const auto& mod : embedded_modules()) {
        std::string source(mod.source), filename(mod.filename);
        Ref code = Ref::steal(Py_CompileString(source.c_str(), filename.c_str(), Py_file_input));
        Ref name = Ref::steal(
            PyUnicode_FromStringAndSize(mod.name.data(), static_cast<Py_ssize_t>(mod.name.size())));
        Ref file = Ref::steal(
            PyUnicode_FromStringAndSize(filename.data(), static_cast<Py_ssize_t>(filename.size())));
        if (!code || !name || !file)
            return false;
        Ref module =
            Ref::steal(PyImport_ExecCodeModuleObject(name.get(), code.get(), file.get(), nullptr));
        if (!module)
            return false;
    }
    return true;
}

void start_interpreter(int argc, const char* const* argv) {
    register_native_module();  // before the interpreter exists, as the inittab requires
    PyConfig config;
    PyConfig_InitPythonConfig(&config);
    config.install_signal_handlers = 0;
    config.parse_argv = 0;
    py::initialize_interpreter(&config, argc, argv, false);
    if (!load_embedded_package())
        throw py::error_already_set();
}

void stop_interpreter() { py::finalize_interpreter(); }

}  // namespace narwhal::python
