#include "python/interpreter.hpp"

#include "python/embedded_sources.hpp"
#include "python/native_module.hpp"
#include "python/py_ref.hpp"
#include "python/subinterpreter.hpp"

#include <pybind11/embed.h>

#include <filesystem>
#include <fstream>
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

namespace {

namespace fs = std::filesystem;

const std::string embedded_version = PY_VERSION;
const std::string embedded_minor =
    std::to_string(PY_MAJOR_VERSION) + "." + std::to_string(PY_MINOR_VERSION);

std::string trim(const std::string& s) {
    auto b = s.find_first_not_of(" \t\r");
    auto e = s.find_last_not_of(" \t\r");
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

// The venv's python, after checking that the venv was made by this binary's Python
// minor version: a venv of another version has no site-packages this interpreter can
// import from, and mixing them fails late and obscurely.
std::string venv_python(const std::string& venv) {
    std::string embeds = "narwhal embeds Python " + embedded_version;
    std::string minor_name = "Python " + embedded_minor;
    fs::path root = fs::absolute(venv);
    std::ifstream cfg(root / "pyvenv.cfg");
    if (!cfg)
        throw VenvError(venv + " has no pyvenv.cfg (" + embeds + ")");
    std::string version, line;
    while (std::getline(cfg, line)) {
        auto eq = line.find('=');
        if (eq == std::string::npos)
            continue;
        std::string key = trim(line.substr(0, eq));
        if (key == "version" || key == "version_info")
            version = trim(line.substr(eq + 1));
    }
    std::string minor = version.substr(0, version.find('.', version.find('.') + 1));
    if (minor != embedded_minor)
        throw VenvError(venv + " was made by Python " +
                        (version.empty() ? std::string("of an unknown version") : version) +
                        ", but " + embeds + "; recreate it with " + minor_name);
    for (const char* name : {"python", "python3"}) {
        std::error_code ec;
        if (fs::exists(root / "bin" / name, ec))
            return (root / "bin" / name).string();
    }
    // No python in it (a venv laid out by hand): its path still leads CPython to
    // pyvenv.cfg, so its packages are importable; only running sys.executable fails.
    return (root / "bin" / "python").string();
}

}  // namespace

void start_interpreter(int argc, const char* const* argv, const std::string& venv) {
    std::string executable = venv.empty() ? std::string() : venv_python(venv);
    register_native_module();  // before the interpreter exists, as the inittab requires
    PyConfig config;
    PyConfig_InitPythonConfig(&config);
    config.install_signal_handlers = 0;
    config.parse_argv = 0;
    // As if started as the venv's python: CPython's path calculation then finds
    // pyvenv.cfg next to it (sys._base_executable, sys.base_prefix) and site honours its
    // include-system-site-packages, exactly as for `venv/bin/python app.py`.
    if (!executable.empty()) {
        PyStatus st = PyConfig_SetBytesString(&config, &config.executable, executable.c_str());
        if (PyStatus_Exception(st)) {
            PyConfig_Clear(&config);
            throw std::runtime_error(st.err_msg ? st.err_msg : "cannot set sys.executable");
        }
    }
    py::initialize_interpreter(&config, argc, argv, false);
    if (!load_embedded_package())
        throw py::error_already_set();
    // Without a venv, sys.executable would be this binary (which cannot run `-c`): name
    // the installation's python instead. Only known once the paths are computed.
    if (venv.empty())
        py::module_::import("narwhal._runtime").attr("use_installation_python")();
}

void stop_interpreter() {
    if (interpreter_left_running()) {
        // Finalising would end the unfinalised sub-interpreter first, which aborts while
        // its thread runs: flush what Python buffered and let the process exit instead.
        for (const char* name : {"stdout", "stderr"})
            if (PyObject* stream = PySys_GetObject(name)) {  // borrowed
                Ref r = Ref::steal(PyObject_CallMethod(stream, "flush", nullptr));
                if (!r)
                    PyErr_Clear();
            }
        return;
    }
    py::finalize_interpreter();
}

}  // namespace narwhal::python
