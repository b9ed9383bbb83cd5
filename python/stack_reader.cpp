#include "python/stack_reader.hpp"

#include "python/py_ref.hpp"

#include <Python.h>

namespace narwhal::python {

namespace {

// The frame `ident`'s thread is running in the current interpreter (new reference), or
// nullptr. Only this interpreter's threads: sys._current_frames() walks every
// interpreter's, and would make frame objects for another interpreter's frames (with
// this one's allocator) while that one runs under its own GIL.
PyObject* frame_of_thread(unsigned long ident) {
    PyThreadState* self = PyThreadState_Get();
    for (PyThreadState* t = PyInterpreterState_ThreadHead(PyThreadState_GetInterpreter(self)); t;
         t = PyThreadState_Next(t))
        if (t != self && t->thread_id == ident)
            return reinterpret_cast<PyObject*>(PyThreadState_GetFrame(t));
    return nullptr;
}

}  // namespace

StackReader::StackReader(PyInterpreterState* interpreter) : interpreter_(interpreter) {
    thread_ = std::thread([this] { run(); });
}

StackReader::~StackReader() { stop(); }

void StackReader::request(unsigned long ident,
                          std::function<void(std::vector<asgi::StackFrame>)> done) {
    {
        std::lock_guard lock(mu_);
        if (stopping_)
            return;
        jobs_.push_back({ident, std::move(done)});
    }
    cv_.notify_one();
}

void StackReader::stop() {
    {
        std::lock_guard lock(mu_);
        stopping_ = true;
        jobs_.clear();
    }
    cv_.notify_all();
    if (thread_.joinable())
        thread_.join();
}

void StackReader::run() {
    for (;;) {
        Job job;
        {
            std::unique_lock lock(mu_);
            cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
            if (stopping_)
                break;
            job = std::move(jobs_.front());
            jobs_.pop_front();
        }
        auto frames = read(job.ident);
        job.done(std::move(frames));
    }
    if (thread_state_) {
        PyEval_RestoreThread(thread_state_);
        PyThreadState_Clear(thread_state_);
        PyThreadState_DeleteCurrent();
    }
}

std::vector<asgi::StackFrame> StackReader::read(unsigned long ident) {
    std::vector<asgi::StackFrame> out;
    PyGILState_STATE gil{};
    if (interpreter_) {
        if (!thread_state_)
            thread_state_ = PyThreadState_New(interpreter_);
        PyEval_RestoreThread(thread_state_);
    } else {
        gil = PyGILState_Ensure();
    }
    {
        // The thread's frame, walked with traceback.extract_stack (oldest first).
        Ref frame_ref = Ref::steal(frame_of_thread(ident));
        PyObject* frame = frame_ref.get();
        Ref tb = frame ? Ref::steal(PyImport_ImportModule("traceback")) : Ref();
        Ref summary =
            tb ? Ref::steal(PyObject_CallMethod(tb.get(), "extract_stack", "O", frame)) : Ref();
        if (summary) {
            Ref it = Ref::steal(PyObject_GetIter(summary.get()));
            while (it) {
                Ref fs = Ref::steal(PyIter_Next(it.get()));
                if (!fs)
                    break;
                asgi::StackFrame f;
                auto text = [&](const char* attr) {
                    Ref v = Ref::steal(PyObject_GetAttrString(fs.get(), attr));
                    const char* s =
                        (v && PyUnicode_Check(v.get())) ? PyUnicode_AsUTF8(v.get()) : nullptr;
                    return s ? std::string(s) : std::string();
                };
                f.file = text("filename");
                f.function = text("name");
                f.text = text("line");
                Ref line = Ref::steal(PyObject_GetAttrString(fs.get(), "lineno"));
                f.line = line && PyLong_Check(line.get())
                             ? static_cast<int>(PyLong_AsLong(line.get()))
                             : 0;
                out.push_back(std::move(f));
            }
        }
        PyErr_Clear();
    }
    if (interpreter_)
        PyEval_SaveThread();
    else
        PyGILState_Release(gil);
    return out;
}

}  // namespace narwhal::python
