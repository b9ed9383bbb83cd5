// A connection's input buffer. Unlike beast::flat_buffer it never moves or rewinds its
// bytes in consume(): parsing may run while a read into the prepared region is still
// pending (a disconnect watch, or a body read when the app grants more credit), and
// that read must land after the bytes already there. Compaction happens only in
// prepare(), which is called when no read is pending.
#pragma once

#include <boost/asio/buffer.hpp>

#include <cstring>
#include <memory>
#include <string_view>

namespace narwhal::server {

class ReadBuffer {
public:
    std::string_view data() const { return {storage_.get() + begin_, end_ - begin_}; }
    std::size_t size() const { return end_ - begin_; }
    std::size_t capacity() const { return capacity_; }

    void consume(std::size_t n) { begin_ += std::min(n, size()); }
    void commit(std::size_t n) { end_ += n; }
    void clear() { begin_ = end_ = 0; }

    // Room for `n` more bytes after the data. Only while no read is pending.
    boost::asio::mutable_buffer prepare(std::size_t n) {
        std::size_t live = size();
        if (begin_ > 0) {
            if (live)
                std::memmove(storage_.get(), storage_.get() + begin_, live);
            begin_ = 0;
            end_ = live;
        }
        if (end_ + n > capacity_) {
            std::size_t cap = std::max(end_ + n, capacity_ * 2);
            auto bigger = std::make_unique_for_overwrite<char[]>(cap);
            if (live)
                std::memcpy(bigger.get(), storage_.get(), live);
            storage_ = std::move(bigger);
            capacity_ = cap;
        }
        return {storage_.get() + end_, n};
    }

    // Gives memory back when empty. Only while no read is pending.
    void shrink() {
        if (size() == 0) {
            storage_.reset();
            capacity_ = begin_ = end_ = 0;
        }
    }

private:
    std::unique_ptr<char[]> storage_;
    std::size_t capacity_ = 0;
    std::size_t begin_ = 0;
    std::size_t end_ = 0;
};

}  // namespace narwhal::server
