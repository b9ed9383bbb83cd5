// Which interpreter of the worker takes a new connection. All its requests then go to
// that interpreter (its inbox, its admission): a connection's requests stay in order and
// a WebSocket's messages reach the one loop running its app.
//
// The rule: the interpreter with the fewest requests in flight or waiting for a slot,
// ties taken in turn. In turn alone (round-robin) would be as cheap and as fair for equal
// connections, but would keep handing new connections to an interpreter whose loop is
// stuck in a long CPU-bound request or blocked outright; counting its in-flight requests
// steers them to the others. The loads are read once per connection, never per request.
#pragma once

#include <atomic>
#include <cstddef>
#include <span>

namespace narwhal::server {

// The index in `loads` of the smallest load; among equal ones the first at or after
// `start` (wrapping). `loads` is not empty.
inline std::size_t least_loaded(std::span<const std::size_t> loads, std::size_t start) {
    std::size_t n = loads.size();
    std::size_t best = start % n;
    for (std::size_t k = 1; k < n; ++k) {
        std::size_t i = (start + k) % n;
        if (loads[i] < loads[best])
            best = i;
    }
    return best;
}

// Keeps the turn between picks. Any thread (the I/O threads accept concurrently).
class InterpreterPicker {
public:
    // More than --interpreters allows (the master's table tracks 16 loops per worker).
    static constexpr std::size_t max_interpreters = 64;

    std::size_t pick(std::span<const std::size_t> loads) {
        std::size_t chosen = least_loaded(loads, next_.load(std::memory_order_relaxed));
        // The next tie goes to the interpreter after this one. A race between two
        // accepting threads can give both the same turn: the loads still decide.
        next_.store(chosen + 1, std::memory_order_relaxed);
        return chosen;
    }

private:
    std::atomic<std::size_t> next_{0};
};

}  // namespace narwhal::server
