#include "asgi/admission.hpp"

namespace narwhal::asgi {

Admission::Result Admission::acquire(const std::shared_ptr<AdmissionWaiter>& waiter) {
    std::lock_guard lock(mu_);
    if (limit_ == 0 || in_flight_ < limit_) {
        ++in_flight_;
        return Result::admitted;
    }
    if (waiters_.size() >= queue_limit_)
        return Result::refused;
    waiters_.push_back(waiter);
    return Result::queued;
}

void Admission::release() {
    std::shared_ptr<AdmissionWaiter> next;
    {
        std::lock_guard lock(mu_);
        while (!waiters_.empty() && !next) {
            next = waiters_.front().lock();
            waiters_.pop_front();
        }
        if (!next) {
            if (in_flight_ > 0)
                --in_flight_;
            return;
        }
    }
    // The slot passes to `next` without ever being free, so in_flight_ stays.
    next->admitted();
}

bool Admission::cancel(const AdmissionWaiter* waiter) {
    std::lock_guard lock(mu_);
    for (auto it = waiters_.begin(); it != waiters_.end(); ++it) {
        if (it->lock().get() == waiter) {
            waiters_.erase(it);
            return true;
        }
    }
    return false;
}

std::size_t Admission::in_flight() const {
    std::lock_guard lock(mu_);
    return in_flight_;
}

std::size_t Admission::queued() const {
    std::lock_guard lock(mu_);
    return waiters_.size();
}

bool Admission::full() const {
    std::lock_guard lock(mu_);
    return limit_ != 0 && in_flight_ >= limit_ && waiters_.size() >= queue_limit_;
}

}  // namespace narwhal::asgi
