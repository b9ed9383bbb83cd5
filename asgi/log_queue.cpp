#include "asgi/log_queue.hpp"

#include <utility>

namespace narwhal::log {

bool LogQueue::push(Record&& r) {
    bool wake;
    {
        std::lock_guard lock(mu_);
        if (items_.size() >= capacity_) {
            ++dropped_;
            return false;
        }
        wake = items_.empty();
        items_.push_back(std::move(r));
    }
    if (wake)
        cv_.notify_one();
    return true;
}

std::vector<Record> LogQueue::wait_take() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return !items_.empty() || dropped_ > 0 || stopped_; });
    return std::exchange(items_, {});
}

std::vector<Record> LogQueue::take() {
    std::lock_guard lock(mu_);
    return std::exchange(items_, {});
}

uint64_t LogQueue::take_dropped() {
    std::lock_guard lock(mu_);
    return std::exchange(dropped_, 0);
}

void LogQueue::stop() {
    {
        std::lock_guard lock(mu_);
        stopped_ = true;
    }
    cv_.notify_all();
}

void LogQueue::restart() {
    std::lock_guard lock(mu_);
    stopped_ = false;
}

LogQueue& queue() {
    static LogQueue* q = new LogQueue();  // never destroyed: see the header
    return *q;
}

}  // namespace narwhal::log
