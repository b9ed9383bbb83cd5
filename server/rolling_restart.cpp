#include "server/rolling_restart.hpp"

#include <utility>

namespace narwhal::server {

RollingRestart::Request RollingRestart::request(std::vector<Id> positions) {
    if (active()) {
        queued_ = std::move(positions);
        // Between steps (none under way) there is nothing to finish: start over now.
        if (!current_)
            finish_step();
        return Request::restarts;
    }
    pending_.assign(positions.begin(), positions.end());
    done_ = 0;
    total_ = pending_.size();
    return Request::started;
}

std::optional<RollingRestart::Id> RollingRestart::next_step() {
    if (current_ || pending_.empty())
        return std::nullopt;
    current_ = pending_.front();
    pending_.pop_front();
    return current_;
}

bool RollingRestart::step_done() {
    if (!current_)
        return false;
    ++done_;
    return finish_step();
}

// Between two steps: a waiting SIGHUP replaces what is left with a new roll.
bool RollingRestart::finish_step() {
    current_.reset();
    if (queued_) {
        pending_.assign(queued_->begin(), queued_->end());
        queued_.reset();
        done_ = 0;
        total_ = pending_.size();
    }
    return !active();
}

bool RollingRestart::forget(Id position) {
    if (!active())
        return false;
    bool in_roll = std::erase(pending_, position) > 0 || current_ == position;
    if (queued_)
        std::erase(*queued_, position);
    if (in_roll && total_ > 0)
        --total_;
    if (current_ == position)
        return finish_step();
    return !active();
}

bool RollingRestart::abort() {
    pending_.clear();
    current_.reset();
    if (!queued_) {
        done_ = total_ = 0;
        return false;
    }
    finish_step();
    return active();
}

}  // namespace narwhal::server
