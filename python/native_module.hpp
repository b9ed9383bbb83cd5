// The built-in module `_narwhal`: the server's logger and version for the embedded
// package, and the native types of the hot path. A multi-phase-init module, so every
// interpreter that imports it gets its own module object, its own heap types and its
// own interned names (its state, below): nothing Python is shared between
// interpreters, as own-GIL sub-interpreters require. It uses the C API only.
#pragma once

#include "python/names.hpp"

#include <Python.h>

namespace narwhal::python {

// The module's state: one per interpreter. Every member is owned (released by the
// module's m_clear / m_free). Objects that need a type or a name keep a pointer to
// their LoopServices, which points here, instead of looking the module up per call.
struct NativeState {
    PyTypeObject* receive_type;      // narwhal.Receive (cycle.hpp)
    PyTypeObject* send_type;         // narwhal.Send (cycle.hpp)
    PyTypeObject* step_type;         // narwhal.RequestStep (request_step.hpp)
    PyTypeObject* cancel_step_type;  // narwhal.CancelStep (cancel_scope.hpp)
    PyTypeObject* dispatcher_type;   // narwhal.Dispatcher (dispatcher.hpp)
    Names* names;
};

// Adds `_narwhal` to the built-in modules. Call once, before the interpreter starts.
void register_native_module();

// The state of an imported `_narwhal` module (nullptr with an error set if `module` is
// not one).
NativeState* native_state(PyObject* module);

}  // namespace narwhal::python
