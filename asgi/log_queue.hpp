// Log records on their way to Python's `logging`: a bounded queue that any thread pushes
// to without waiting for Python, and one consumer (the bridge's delivery thread) takes
// in batches. When it is full the record is dropped and counted, never waited for: an
// I/O thread must not stall because a log handler is slow. The consumer reports the
// count. A producer signals the consumer only on the empty -> non-empty transition,
// the inbox's wake rule.
#pragma once

#include "asgi/log.hpp"

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace narwhal::log {

struct Record {
    Level level = Level::info;
    Logger logger = Logger::error;
    double ts = 0;        // creation time, seconds since the epoch
    std::string message;  // the whole human text
    std::string fields;   // JSON members for --log-format json, or empty
    // HTTP access lines: uvicorn's record.args (client_addr, method, full_path,
    // http_version, status_code), which apps' access filters read. status 0: none.
    std::string client, method, target, http_version;
    int status = 0;
};

class LogQueue {
public:
    // Room for a burst of access lines while the interpreter is busy: at ~200 bytes a
    // record this bounds the queue near 2 MiB.
    static constexpr std::size_t default_capacity = 10000;

    explicit LogQueue(std::size_t capacity = default_capacity) : capacity_(capacity) {}

    // False when the queue was full: the record is dropped and counted.
    bool push(Record&& r);
    // Waits until there are records or stop() was called, then takes them all (in
    // order). Empty only after stop() with nothing left.
    std::vector<Record> wait_take();
    // Takes what is there without waiting.
    std::vector<Record> take();
    // Drops counted since the last call.
    uint64_t take_dropped();
    void stop();
    void restart();

private:
    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<Record> items_;
    std::size_t capacity_;
    uint64_t dropped_ = 0;
    bool stopped_ = false;
};

// The process's one queue: it outlives every producer, so a thread that logs during
// shutdown never pushes into a destroyed object.
LogQueue& queue();

}  // namespace narwhal::log
