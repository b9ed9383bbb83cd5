#include "python/log_bridge.hpp"

#include "asgi/log.hpp"
#include "asgi/log_queue.hpp"

#include <string_view>
#include <utility>
#include <vector>

namespace narwhal::python {

namespace {

using log::Level;

// Python's numbers for our levels; TRACE is uvicorn's 5.
int python_level(Level l) {
    switch (l) {
    case Level::trace: return 5;
    case Level::debug: return 10;
    case Level::info: return 20;
    case Level::warning: return 30;
    case Level::error: return 40;
    case Level::critical: return 50;
    }
    return 20;
}

Level from_python_level(long n) {
    return n < 10   ? Level::trace
           : n < 20 ? Level::debug
           : n < 30 ? Level::info
           : n < 40 ? Level::warning
           : n < 50 ? Level::error
                    : Level::critical;
}

std::string_view text_of(PyObject* o) {
    Py_ssize_t n = 0;
    const char* p = PyUnicode_AsUTF8AndSize(o, &n);
    return p ? std::string_view(p, static_cast<std::size_t>(n)) : std::string_view();
}

// _write(levelno, logger, message, fields, ts): one line through narwhal's writer.
PyObject* write_record(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    if (nargs != 5 || !PyUnicode_Check(args[1]) || !PyUnicode_Check(args[2]) ||
        !(args[3] == Py_None || PyUnicode_Check(args[3]))) {
        PyErr_SetString(PyExc_TypeError, "_write(levelno, logger, message, fields, ts)");
        return nullptr;
    }
    long level = PyLong_AsLong(args[0]);
    double ts = PyFloat_AsDouble(args[4]);
    if (PyErr_Occurred())
        return nullptr;
    std::string_view logger = text_of(args[1]);
    std::string_view message = text_of(args[2]);
    std::string_view fields = args[3] == Py_None ? std::string_view() : text_of(args[3]);
    if (PyErr_Occurred())
        return nullptr;
    log::write_record(from_python_level(level), logger, message, fields, ts);
    Py_RETURN_NONE;
}

// _forward(mask): which of narwhal's loggers go through Python (log::logger_bit values).
PyObject* set_forwarded(PyObject*, PyObject* arg) {
    unsigned long mask = PyLong_AsUnsignedLong(arg);
    if (PyErr_Occurred())
        return nullptr;
    log::set_forwarded(static_cast<unsigned>(mask) & log::all_loggers);
    Py_RETURN_NONE;
}

PyMethodDef write_def = {"_write",
                         reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(write_record)),
                         METH_FASTCALL, "Write one record through narwhal's log writer."};
PyMethodDef forward_def = {"_forward", set_forwarded, METH_O,
                           "Send these loggers' records through Python's logging."};

Ref str(std::string_view s) {
    return Ref::steal(PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "replace"));
}

// (levelno, logger, message, fields or None, ts, access args or None)
Ref to_tuple(const log::Record& r) {
    Ref args;
    if (r.status != 0)
        args = Ref::steal(Py_BuildValue("(NNNNi)", str(r.client).release(), str(r.method).release(),
                                        str(r.target).release(), str(r.http_version).release(),
                                        r.status));
    else
        args = Ref::borrow(Py_None);
    Ref fields = r.fields.empty() ? Ref::borrow(Py_None) : str(r.fields);
    Ref message = str(r.message);
    if (!args || !fields || !message)
        return {};
    return Ref::steal(Py_BuildValue("(isOOdO)", python_level(r.level),
                                    std::string(log::logger_name(r.logger)).c_str(), message.get(),
                                    fields.get(), r.ts, args.get()));
}

// GIL held. Never raises: a failing delivery is reported and the batch is gone.
void deliver(PyObject* fn, const std::vector<log::Record>& batch, uint64_t dropped) {
    Ref list = Ref::steal(PyList_New(0));
    if (!list) {
        PyErr_Clear();
        return;
    }
    for (const log::Record& r : batch) {
        Ref t = to_tuple(r);
        if (!t || PyList_Append(list.get(), t.get()) < 0)
            PyErr_Clear();
    }
    Ref r = Ref::steal(
        PyObject_CallFunction(fn, "OK", list.get(), static_cast<unsigned long long>(dropped)));
    if (!r)
        PyErr_WriteUnraisable(fn);
}

}  // namespace

bool LogBridge::attach_writer() {
    Ref module = Ref::steal(PyImport_ImportModule("narwhal._logconfig"));
    Ref write = Ref::steal(PyCFunction_New(&write_def, nullptr));
    return module && write && PyObject_SetAttrString(module.get(), "_write", write.get()) == 0;
}

std::unique_ptr<LogBridge> LogBridge::start() {
    Ref module = Ref::steal(PyImport_ImportModule("narwhal._logconfig"));
    if (!module)
        return nullptr;
    std::unique_ptr<LogBridge> b(new LogBridge());
    b->deliver_ = Ref::steal(PyObject_GetAttrString(module.get(), "deliver"));
    Ref write = Ref::steal(PyCFunction_New(&write_def, nullptr));
    Ref forward = Ref::steal(PyCFunction_New(&forward_def, nullptr));
    if (!b->deliver_ || !write || !forward ||
        PyObject_SetAttrString(module.get(), "_write", write.get()) < 0 ||
        PyObject_SetAttrString(module.get(), "_forward", forward.get()) < 0)
        return nullptr;
    log::queue().restart();
    b->thread_ = std::thread([raw = b.get()] { raw->run(); });
    return b;
}

LogBridge::~LogBridge() {
    // From here on records are written directly; what is queued still goes to Python.
    log::set_forwarded(0);
    log::queue().stop();
    Py_BEGIN_ALLOW_THREADS;
    thread_.join();
    Py_END_ALLOW_THREADS;
    // Pushed after the thread's last take (a producer that saw the old mask).
    if (auto rest = log::queue().take(); !rest.empty())
        deliver(deliver_.get(), rest, log::queue().take_dropped());
}

void LogBridge::run() {
    for (;;) {
        std::vector<log::Record> batch = log::queue().wait_take();
        uint64_t dropped = log::queue().take_dropped();
        if (batch.empty() && dropped == 0)
            return;  // stopped, and nothing left
        PyGILState_STATE g = PyGILState_Ensure();
        deliver(deliver_.get(), batch, dropped);
        PyGILState_Release(g);
    }
}

}  // namespace narwhal::python
