// A connection's outgoing bytes. At most one write is in flight; pieces queued meanwhile
// leave together in the next one, as one gathered write (one sendmsg however many pieces).
// The app's body bytes among them are counted, so the send water marks (Channel) learn
// when they have left.
#pragma once

#include <boost/asio/buffer.hpp>

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace narwhal::server {

class WriteQueue {
public:
    // The piece new bytes should join: the last one waiting, or a fresh one.
    std::string& tail() { return pending_.empty() ? pending_.emplace_back() : pending_.back(); }
    void push(std::string&& bytes) { pending_.push_back(std::move(bytes)); }
    // `n` of the bytes queued since the last begin_write are the app's body bytes.
    void count_app_bytes(std::size_t n) { pending_app_bytes_ += n; }

    bool waiting() const { return !pending_.empty(); }
    bool writing() const { return writing_; }

    // Puts everything waiting in flight; returns the buffers for one write, valid until
    // end_write(). Only when !writing() and waiting().
    const std::vector<boost::asio::const_buffer>& begin_write() {
        writing_ = true;
        inflight_.swap(pending_);
        inflight_app_bytes_ = std::exchange(pending_app_bytes_, 0);
        gather_.clear();
        for (const auto& s : inflight_)
            gather_.emplace_back(s.data(), s.size());
        return gather_;
    }
    // The write finished (or failed). Returns the app bytes it carried.
    std::size_t end_write() {
        writing_ = false;
        inflight_.clear();  // keeps the vector's capacity for the next write
        return std::exchange(inflight_app_bytes_, 0);
    }

private:
    std::vector<std::string> pending_;
    std::vector<std::string> inflight_;
    std::vector<boost::asio::const_buffer> gather_;
    std::size_t pending_app_bytes_ = 0;
    std::size_t inflight_app_bytes_ = 0;
    bool writing_ = false;
};

}  // namespace narwhal::server
