// What one HTTP request's access line and its metrics say about it, gathered on the
// connection's thread along the request's life: when its head arrived, when the app got
// it, when the response ended, its status and sizes. Plain values, reset per request.
#pragma once

#include "server/metrics.hpp"

#include <chrono>
#include <cstdint>

namespace narwhal::server {

struct RequestRecord {
    using clock = std::chrono::steady_clock;

    clock::time_point received{};             // the head was complete (or found invalid)
    clock::time_point dispatched{};           // handed to the app; unset: the app never had it
    clock::time_point finished{};             // the response's last byte was written
    int status = 0;                           // as sent; 0: no response head was sent
    uint64_t bytes_in = 0;                    // request body bytes handed to the app
    uint64_t bytes_out = 0;                   // response body bytes (the app's, or an error's)
    MethodClass method = MethodClass::other;  // the metrics' method label

    bool reached_app() const { return dispatched != clock::time_point{}; }
    // Waiting for an admission slot (--limit-concurrency); for a request refused with 503,
    // its whole life.
    clock::duration queue_wait() const {
        return (reached_app() ? dispatched : finished) - received;
    }
    // From the app getting the request to the response's last byte leaving.
    clock::duration app_time() const {
        return reached_app() ? finished - dispatched : clock::duration::zero();
    }
    clock::duration total() const { return finished - received; }
};

}  // namespace narwhal::server
