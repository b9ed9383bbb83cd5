// Reads another thread's Python stack for the watchdog. Its own thread takes the GIL,
// so the watchdog never blocks on it: a loop stuck in a C call that holds the GIL
// delays the stack, not the report. One per interpreter: a sub-interpreter's loop stack
// is read with a thread state of that interpreter, under its own GIL.
#pragma once

#include "asgi/stack_reader.hpp"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include <Python.h>

namespace narwhal::python {

class StackReader final : public asgi::StackReader {
public:
    // `interpreter`: the interpreter whose loop it reads; nullptr for the main one (read
    // through the GIL state API, as before sub-interpreters). A sub-interpreter must
    // outlive its reader (stop() first).
    explicit StackReader(PyInterpreterState* interpreter = nullptr);
    ~StackReader() override;
    void request(unsigned long ident,
                 std::function<void(std::vector<asgi::StackFrame>)> done) override;
    // Call without holding the GIL: the reader may be waiting for it.
    void stop();

private:
    struct Job {
        unsigned long ident;
        std::function<void(std::vector<asgi::StackFrame>)> done;
    };
    void run();
    std::vector<asgi::StackFrame> read(unsigned long ident);

    PyInterpreterState* interpreter_;
    PyThreadState* thread_state_ = nullptr;  // the reader's own, in interpreter_

    std::thread thread_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Job> jobs_;
    bool stopping_ = false;
};

}  // namespace narwhal::python
