// Reads another thread's Python stack for the watchdog. Its own thread takes the GIL,
// so the watchdog never blocks on it: a loop stuck in a C call that holds the GIL
// delays the stack, not the report.
#pragma once

#include "asgi/stack_reader.hpp"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace narwhal::python {

class StackReader final : public asgi::StackReader {
public:
    StackReader();
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
    static std::vector<asgi::StackFrame> read(unsigned long ident);

    std::thread thread_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Job> jobs_;
    bool stopping_ = false;
};

}  // namespace narwhal::python
