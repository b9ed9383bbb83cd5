// The bounded multi-producer queue that feeds one interpreter. Producers (I/O threads)
// write the eventfd only on the empty -> non-empty transition, so a busy interpreter
// is woken once per batch, not once per event.
#pragma once

#include "asgi/events.hpp"

#include <cstddef>
#include <deque>
#include <mutex>
#include <vector>

namespace narwhal::asgi {

class Inbox {
public:
    // `request_capacity`: new requests queued (not yet taken by the interpreter) above
    // which push_request refuses, so the I/O side can shed load with a 503.
    explicit Inbox(std::size_t request_capacity);
    ~Inbox();
    Inbox(const Inbox&) = delete;
    Inbox& operator=(const Inbox&) = delete;

    int fd() const { return efd_; }

    // A new request. Returns false (and leaves `ev` untouched) when the queue of new
    // requests is full.
    bool push_request(Event& ev);
    // Anything else. Always accepted: each in-flight request has at most one body
    // chunk, one disconnect and one drained event outstanding, so these are bounded by
    // the number of requests admitted.
    void push(Event&& ev);

    // Consumer: clears the wake-up, then moves up to `max` events to `out`. Returns
    // true when events remain (the caller reschedules itself without waiting on the fd).
    bool take(std::vector<Event>& out, std::size_t max);

    std::size_t size() const;

    // Writes the eventfd. Called by push on the empty -> non-empty transition, or later
    // by a producer that deferred it (see deferred_wake.hpp).
    void wake();

private:
    void push_locked(Event&& ev, std::unique_lock<std::mutex>& lock);
    static void wake_fn(void* self);

    mutable std::mutex mu_;
    std::deque<Event> queue_;
    std::size_t requests_queued_ = 0;
    std::size_t request_capacity_;
    int efd_ = -1;
};

}  // namespace narwhal::asgi
