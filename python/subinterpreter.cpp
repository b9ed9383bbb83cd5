#include "python/subinterpreter.hpp"

#include "asgi/log.hpp"
#include "python/interpreter.hpp"
#include "python/log_bridge.hpp"
#include "python/py_ref.hpp"

#include <atomic>

namespace narwhal::python {

namespace {

// How long a sub-interpreter's unjoined threads (daemon threads) may take to end on
// their own once its loop has stopped: asgiref's per-request helper thread ends within
// milliseconds; a thread that loops forever never will, and only delays the exit.
constexpr double thread_exit_grace = 1.0;

std::atomic<bool> left_running{false};

}  // namespace

bool interpreter_left_running() { return left_running.load(); }

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
    std::string left;  // threads that would make Py_EndInterpreter abort the process
    {                  // these references must go before the interpreter does
        Ref runtime = Ref::steal(PyImport_ImportModule("narwhal._runtime"));
        // Before forget_dummy_thread: asking threading for the current thread makes its
        // stand-in again.
        Ref names = runtime ? Ref::steal(PyObject_CallMethod(runtime.get(), "threads_left_running",
                                                             "d", thread_exit_grace))
                            : Ref();
        Ref joined = names ? Ref::steal(PyUnicode_Join(Ref::steal(PyUnicode_FromString(", ")).get(),
                                                       names.get()))
                           : Ref();
        const char* text = joined ? PyUnicode_AsUTF8(joined.get()) : nullptr;
        if (text)
            left = text;
        PyErr_Clear();
        Ref forgot =
            runtime ? Ref::steal(PyObject_CallMethod(runtime.get(), "forget_dummy_thread", nullptr))
                    : Ref();
        if (!forgot)
            PyErr_Clear();
    }
    if (!left.empty()) {
        // CPython cannot finalise an interpreter while one of its threads runs (it aborts
        // the process, "not the last thread"), nor the main one after it: leave both, and
        // let the process end with the thread still running, as daemon threads do.
        log::warning("Interpreter threads still running at exit ({}): the interpreter is "
                     "left unfinalised and Python's exit-time clean-up is skipped",
                     left);
        left_running.store(true);
        PyEval_SaveThread();
        PyEval_RestoreThread(main_);
        PyThreadState_Clear(main_);
        PyThreadState_DeleteCurrent();
        return;
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
