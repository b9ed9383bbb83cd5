// Admission control for one interpreter: at most `limit` requests in flight; the next
// `queue_limit` wait in FIFO order for a slot, the rest are refused. A slot freed by a
// finished request is handed straight to the oldest waiter, so a burst cannot starve
// requests that queued first. Thread-safe: I/O threads acquire, the interpreter
// releases.
#pragma once

#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>

namespace narwhal::asgi {

class AdmissionWaiter {
public:
    virtual ~AdmissionWaiter() = default;
    // Called (on any thread) when the waiter got a slot. It owns the slot from then on and
    // must release() it, even if it no longer wants it.
    virtual void admitted() = 0;
};

class Admission {
public:
    enum class Result { admitted, queued, refused };

    // `limit` 0: unlimited (acquire always admits).
    Admission(std::size_t limit, std::size_t queue_limit)
        : limit_(limit), queue_limit_(queue_limit) {}

    Result acquire(const std::shared_ptr<AdmissionWaiter>& waiter);
    // Frees a slot, or hands it to the oldest waiter still alive.
    void release();
    // Removes a waiter that gave up (timeout, disconnect). False when it was already
    // admitted: its admitted() call is on the way and it then owns a slot.
    bool cancel(const AdmissionWaiter* waiter);

    std::size_t in_flight() const;
    std::size_t queued() const;
    // Every slot taken and the queue at its limit: the next request would be refused.
    bool full() const;

private:
    mutable std::mutex mu_;
    std::size_t limit_;
    std::size_t queue_limit_;
    std::size_t in_flight_ = 0;
    std::deque<std::weak_ptr<AdmissionWaiter>> waiters_;
};

}  // namespace narwhal::asgi
