// What the watchdog knows about one event loop, without the GIL: when it last turned,
// and which request's coroutine it is running now. Written by the loop thread, read by
// the watchdog thread.
#pragma once

#include "asgi/request_id.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>

namespace narwhal::asgi {

class LoopMonitor {
public:
    using clock = std::chrono::steady_clock;

    static int64_t now_ns() {
        return std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now().time_since_epoch())
            .count();
    }

    // Loop thread: the periodic heartbeat ran; the next one is due `interval_ns` later.
    void beat(int64_t now, int64_t interval_ns) {
        last_beat_ns_.store(now, std::memory_order_release);
        next_beat_ns_.store(now + interval_ns, std::memory_order_release);
        if (on_beat)
            on_beat(now);
    }
    int64_t last_beat_ns() const { return last_beat_ns_.load(std::memory_order_acquire); }
    // Watchdog: how long past its due time the heartbeat is (<= 0: on time).
    int64_t overdue_ns(int64_t now) const {
        int64_t due = next_beat_ns_.load(std::memory_order_acquire);
        return due == 0 ? 0 : now - due;
    }
    // The loop has ended: no beat is due any more.
    void stop() {
        next_beat_ns_.store(0, std::memory_order_release);
        if (on_beat)
            on_beat(0);
    }

    // Also told of each beat (its time) and of the end (0): under --workers, the worker's
    // slot in the master's table, which judges hung workers by it. Set before the loop
    // runs. A beat comes every few tens of milliseconds, never per request.
    std::function<void(int64_t now)> on_beat;

    // Loop thread, around each step of a request's coroutine. A seqlock: the watchdog
    // copies the step out and retries if the loop changed it meanwhile.
    // `request_id`: the request's --request-id-header value (empty: none).
    void step_begin(uint64_t id, std::string_view line, std::string_view request_id = {}) {
        seq_.fetch_add(1, std::memory_order_acq_rel);  // odd: writing
        id_.store(id, std::memory_order_relaxed);
        std::size_t n = std::min(line.size(), sizeof line_ - 1);
        for (std::size_t i = 0; i < n; ++i)
            line_[i].store(line[i], std::memory_order_relaxed);
        len_.store(n, std::memory_order_relaxed);
        std::size_t r = std::min(request_id.size(), sizeof rid_);
        for (std::size_t i = 0; i < r; ++i)
            rid_[i].store(request_id[i], std::memory_order_relaxed);
        rid_len_.store(r, std::memory_order_relaxed);
        seq_.fetch_add(1, std::memory_order_release);  // even: stable
    }
    void step_end() {
        seq_.fetch_add(1, std::memory_order_acq_rel);
        id_.store(0, std::memory_order_relaxed);
        len_.store(0, std::memory_order_relaxed);
        rid_len_.store(0, std::memory_order_relaxed);
        seq_.fetch_add(1, std::memory_order_release);
    }

    struct Step {
        uint64_t id = 0;  // 0: no request step running (loop internals, lifespan, ...)
        std::string line;
        std::string request_id;
    };
    Step current_step() const {
        for (;;) {
            uint64_t before = seq_.load(std::memory_order_acquire);
            if (before & 1)
                continue;
            // The copies must not move past the re-check: each load is an acquire (plain
            // loads on x86). A relaxed copy plus one acquire fence would do the same, but
            // ThreadSanitizer does not model fences (GCC 14 warns about every one).
            Step s;
            s.id = id_.load(std::memory_order_acquire);
            std::size_t n = len_.load(std::memory_order_acquire);
            s.line.resize(n);
            for (std::size_t i = 0; i < n; ++i)
                s.line[i] = line_[i].load(std::memory_order_acquire);
            std::size_t r = rid_len_.load(std::memory_order_acquire);
            s.request_id.resize(r);
            for (std::size_t i = 0; i < r; ++i)
                s.request_id[i] = rid_[i].load(std::memory_order_acquire);
            if (seq_.load(std::memory_order_relaxed) == before)
                return s;
        }
    }

    // The loop thread's Python thread id (threading.get_ident()), for reading its stack.
    std::atomic<unsigned long> thread_ident{0};

private:
    std::atomic<int64_t> next_beat_ns_{0};
    std::atomic<int64_t> last_beat_ns_{0};
    std::atomic<uint64_t> seq_{0};
    std::atomic<uint64_t> id_{0};
    std::atomic<std::size_t> len_{0};
    std::atomic<char> line_[256]{};
    std::atomic<std::size_t> rid_len_{0};
    std::atomic<char> rid_[max_request_id_size]{};
};

}  // namespace narwhal::asgi
