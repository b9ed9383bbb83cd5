#include "asgi/inbox.hpp"

#include "asgi/deferred_wake.hpp"

#include <cerrno>
#include <cstdint>
#include <stdexcept>
#include <sys/eventfd.h>
#include <system_error>
#include <unistd.h>

namespace narwhal::asgi {

Inbox::Inbox(std::size_t request_capacity) : request_capacity_(request_capacity) {
    efd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd_ < 0)
        throw std::system_error(errno, std::generic_category(), "eventfd");
}

Inbox::~Inbox() {
    if (efd_ >= 0)
        ::close(efd_);
}

void Inbox::push_locked(Event&& ev, std::unique_lock<std::mutex>& lock) {
    bool was_empty = queue_.empty();
    queue_.push_back(std::move(ev));
    lock.unlock();
    // Only the empty -> non-empty transition owes the consumer a wake-up; a producer
    // that batches defers it to the end of its own batch of work.
    if (was_empty && !defer_wake(&Inbox::wake_fn, this))
        wake();
}

void Inbox::wake() {
    uint64_t one = 1;
    // EAGAIN only when the counter would overflow, i.e. a wake-up is pending anyway.
    [[maybe_unused]] auto n = ::write(efd_, &one, sizeof one);
}

void Inbox::wake_fn(void* self) { static_cast<Inbox*>(self)->wake(); }

bool Inbox::push_request(Event& ev) {
    std::unique_lock lock(mu_);
    if (requests_queued_ >= request_capacity_)
        return false;
    ++requests_queued_;
    push_locked(std::move(ev), lock);
    return true;
}

void Inbox::push(Event&& ev) {
    std::unique_lock lock(mu_);
    if (ev.kind == Event::Kind::request)
        ++requests_queued_;  // keep take()'s count right even past the admission check
    push_locked(std::move(ev), lock);
}

bool Inbox::take(std::vector<Event>& out, std::size_t max) {
    uint64_t count;
    [[maybe_unused]] auto n = ::read(efd_, &count, sizeof count);
    std::lock_guard lock(mu_);
    std::size_t k = std::min(max, queue_.size());
    for (std::size_t i = 0; i < k; ++i) {
        if (queue_.front().kind == Event::Kind::request)
            --requests_queued_;
        out.push_back(std::move(queue_.front()));
        queue_.pop_front();
    }
    return !queue_.empty();
}

std::size_t Inbox::size() const {
    std::lock_guard lock(mu_);
    return queue_.size();
}

}  // namespace narwhal::asgi
