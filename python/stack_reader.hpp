// Reads another thread's Python stack for the watchdog. Its own thread takes the GIL,
// so the watchdog never blocks on it: a loop stuck in a C call that holds the GIL
// delays the stack, not the report.
#pragma once

#include "server/watchdog.hpp"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace narwhal::python {

class StackReader final : public server::StackReader {
public:
    StackReader();
    ~StackReader() override;
    void request(unsigned long ident,
                 std::function<void(std::vector<server::StackFrame>)> done) override;
    // Call without holding the GIL: the reader may be waiting for it.
    void stop();

private:
    struct Job {
        unsigned long ident;
        std::function<void(std::vector<server::StackFrame>)> done;
    };
    void run();
    static std::vector<server::StackFrame> read(unsigned long ident);

    std::thread thread_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Job> jobs_;
    bool stopping_ = false;
};

}  // namespace narwhal::python
