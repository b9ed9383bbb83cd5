#include "python/native_module.hpp"

#include "asgi/log.hpp"
#include "python/cancel_scope.hpp"
#include "python/cycle.hpp"
#include "python/dispatcher.hpp"
#include "python/request_step.hpp"

#include <new>
#include <string_view>

namespace narwhal::python {

namespace {

NativeState* state_of(PyObject* module) {
    return static_cast<NativeState*>(PyModule_GetState(module));
}

// _narwhal.log(level, message): Python messages into the server's logger.
PyObject* log_message(PyObject*, PyObject* args, PyObject* kwargs) {
    static const char* keywords[] = {"level", "message", nullptr};
    int level;
    PyObject* message;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "iO:log", const_cast<char**>(keywords), &level,
                                     &message))
        return nullptr;
    std::string_view text;
    if (PyUnicode_Check(message)) {
        Py_ssize_t n;
        const char* p = PyUnicode_AsUTF8AndSize(message, &n);
        if (!p)
            return nullptr;
        text = {p, static_cast<std::size_t>(n)};
    } else if (PyBytes_Check(message)) {
        text = {PyBytes_AS_STRING(message), static_cast<std::size_t>(PyBytes_GET_SIZE(message))};
    } else {
        return raise(PyExc_TypeError, "log(): message must be a str");
    }
    using narwhal::log::Level;
    Level l = level <= 1   ? Level::debug
              : level == 2 ? Level::info
              : level == 3 ? Level::warning
                           : Level::error;
    if (narwhal::log::enabled(l))
        narwhal::log::write(l, text);
    Py_RETURN_NONE;
}

PyMethodDef module_methods[] = {
    {"log", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(log_message)),
     METH_VARARGS | METH_KEYWORDS, "log(level, message): write to the server's log."},
    {nullptr, nullptr, 0, nullptr},
};

int module_exec(PyObject* module) {
    NativeState* st = state_of(module);
    st->names = new (std::nothrow) Names();
    if (!st->names) {
        PyErr_NoMemory();
        return -1;
    }
    if (PyErr_Occurred())
        return -1;
    if (add_cycle_types(module, *st) < 0 || add_request_step_type(module, *st) < 0 ||
        add_cancel_step_type(module, *st) < 0 || add_dispatcher_type(module, *st) < 0)
        return -1;
    for (PyTypeObject* t : {st->receive_type, st->send_type, st->step_type, st->cancel_step_type,
                            st->dispatcher_type})
        if (PyModule_AddType(module, t) < 0)
            return -1;
    return PyModule_AddStringConstant(module, "version", NARWHAL_VERSION);
}

int module_traverse(PyObject* module, visitproc visit, void* arg) {
    NativeState* st = state_of(module);
    if (!st)
        return 0;
    Py_VISIT(st->receive_type);
    Py_VISIT(st->send_type);
    Py_VISIT(st->step_type);
    Py_VISIT(st->cancel_step_type);
    Py_VISIT(st->dispatcher_type);
    return 0;
}

int module_clear(PyObject* module) {
    NativeState* st = state_of(module);
    if (!st)
        return 0;
    Py_CLEAR(st->receive_type);
    Py_CLEAR(st->send_type);
    Py_CLEAR(st->step_type);
    Py_CLEAR(st->cancel_step_type);
    Py_CLEAR(st->dispatcher_type);
    return 0;
}

void module_free(void* module) {
    module_clear(static_cast<PyObject*>(module));
    if (NativeState* st = state_of(static_cast<PyObject*>(module))) {
        delete st->names;
        st->names = nullptr;
    }
}

PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, reinterpret_cast<void*>(module_exec)},
#if PY_VERSION_HEX >= 0x030C0000
    // Nothing is shared between interpreters: own-GIL sub-interpreters may import it.
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
    {0, nullptr},
};

PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "_narwhal",
    "The narwhal server's native side: its logger, its version, and the hot path's types.",
    sizeof(NativeState),
    module_methods,
    module_slots,
    module_traverse,
    module_clear,
    module_free,
};

PyObject* init_module() { return PyModuleDef_Init(&module_def); }

}  // namespace

void register_native_module() { PyImport_AppendInittab("_narwhal", init_module); }

NativeState* native_state(PyObject* module) {
    if (!PyModule_Check(module) || PyModule_GetDef(module) != &module_def) {
        PyErr_SetString(PyExc_TypeError, "not the _narwhal module");
        return nullptr;
    }
    return state_of(module);
}

}  // namespace narwhal::python
