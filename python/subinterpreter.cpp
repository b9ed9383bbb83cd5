#include "python/subinterpreter.hpp"

#include "python/interpreter.hpp"
#include "python/log_bridge.hpp"
#include "python/py_ref.hpp"

namespace narwhal::python {

#if PY_VERSION_HEX >= 0x030C0000
namespace {

std::string error_text() {
    Ref exc = Ref::steal(fetch_exception());
    Ref s = exc ? Ref::steal(PyObject_Str(exc.get())) : Ref();
    const char* p = s ? PyUnicode_AsUTF8(s.get()) : nullptr;
    PyErr_Clear();
    return p ? p : "unknown error";
}

}  // namespace
#endif

SubInterpreter::SubInterpreter([[maybe_unused]] const std::string& venv) {
#if PY_VERSION_HEX >= 0x030C0000
    // CPython makes a sub-interpreter from a thread of an existing one (here: the main),
    // and gives that thread's GIL back once the new interpreter has its own.
    main_ = PyThreadState_New(PyInterpreterState_Main());
    PyEval_RestoreThread(main_);
    PyInterpreterConfig config = {};
    config.use_main_obmalloc = 0;
    config.allow_fork = 0;  // fork() with several interpreters running is not safe
    config.allow_exec = 1;  // subprocess: the child execs at once
    config.allow_threads = 1;
    // asgiref (Django's async views, Channels) starts a short-lived daemon thread per
    // request: without them Django cannot serve. A daemon thread is not waited for when
    // the interpreter is finalised, as at any interpreter's exit.
    config.allow_daemon_threads = 1;
    config.check_multi_interp_extensions = 1;
    config.gil = PyInterpreterConfig_OWN_GIL;
    PyStatus status = Py_NewInterpreterFromConfig(&state_, &config);
    if (PyStatus_Exception(status) || !state_) {
        // The main interpreter's thread state is current again.
        error_ = status.err_msg ? status.err_msg : "cannot create a sub-interpreter";
        state_ = nullptr;
        PyThreadState_Clear(main_);
        PyThreadState_DeleteCurrent();
        main_ = nullptr;
        return;
    }
    // As in the main interpreter (python/interpreter.cpp): the narwhal package, and
    // outside a venv sys.executable naming the installation's python.
    bool loaded = load_embedded_package() && LogBridge::attach_writer();
    if (loaded && venv.empty()) {
        Ref runtime = Ref::steal(PyImport_ImportModule("narwhal._runtime"));
        Ref r =
            runtime
                ? Ref::steal(PyObject_CallMethod(runtime.get(), "use_installation_python", nullptr))
                : Ref();
        loaded = static_cast<bool>(r);
    }
    if (!loaded) {
        error_ = "cannot load the narwhal package: " + error_text();
        Py_EndInterpreter(state_);
        state_ = nullptr;
        PyEval_RestoreThread(main_);
        PyThreadState_Clear(main_);
        PyThreadState_DeleteCurrent();
        main_ = nullptr;
    }
#else
    error_ = "own-GIL sub-interpreters need CPython 3.12 or later; this is CPython " PY_VERSION;
#endif
}

SubInterpreter::~SubInterpreter() {
    if (!state_)
        return;
    {  // these references must go before the interpreter does
        Ref runtime = Ref::steal(PyImport_ImportModule("narwhal._runtime"));
        Ref forgot =
            runtime ? Ref::steal(PyObject_CallMethod(runtime.get(), "forget_dummy_thread", nullptr))
                    : Ref();
        if (!forgot)
            PyErr_Clear();
    }
    Py_EndInterpreter(state_);  // leaves no thread state current
    PyEval_RestoreThread(main_);
    PyThreadState_Clear(main_);
    PyThreadState_DeleteCurrent();
}

PyInterpreterState* SubInterpreter::interpreter() const {
    return state_ ? PyThreadState_GetInterpreter(state_) : nullptr;
}

}  // namespace narwhal::python
