// An own-GIL sub-interpreter (CPython 3.12 or later) on the calling thread: made with
// CPython's isolated settings (own GIL, own object allocator, no fork, and the
// multi-interpreter check that refuses extension modules which do not declare
// sub-interpreter support) except that exec and daemon threads are allowed, with the
// embedded narwhal package and the log writer loaded into it.
#pragma once

#include <Python.h>

#include <string>

namespace narwhal::python {

// Whether this build's Python has own-GIL sub-interpreters.
constexpr bool own_gil_supported = PY_VERSION_HEX >= 0x030C0000;

// True once a sub-interpreter was left unfinalised because one of its threads was still
// running at exit: the main interpreter must then not be finalised either (CPython would
// end the sub-interpreter itself and abort the process).
bool interpreter_left_running();

class SubInterpreter {
public:
    // On a thread that holds no interpreter's GIL. Afterwards the thread runs in the new
    // interpreter with its GIL held; ok() false (and error() says why) if it could not be
    // made, the thread then holds no GIL.
    explicit SubInterpreter(const std::string& venv);
    // The thread must be back in this interpreter with its GIL held: finalises it (waits
    // for its threads, runs its atexit functions) and leaves the thread holding no GIL.
    // A daemon thread still running after a short grace leaves it unfinalised instead
    // (logged; see interpreter_left_running()).
    ~SubInterpreter();
    SubInterpreter(const SubInterpreter&) = delete;
    SubInterpreter& operator=(const SubInterpreter&) = delete;

    bool ok() const { return state_ != nullptr; }
    const std::string& error() const { return error_; }
    PyInterpreterState* interpreter() const;

private:
    PyThreadState* main_ = nullptr;   // this thread's state in the main interpreter
    PyThreadState* state_ = nullptr;  // its state in the sub-interpreter
    std::string error_;
};

}  // namespace narwhal::python
