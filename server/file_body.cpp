#include "server/file_body.hpp"

#include <sys/sendfile.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace narwhal::server {

FileBody::Progress FileBody::send_some(int socket, std::size_t budget, std::error_code& ec) {
    uint64_t turn = 0;
    while (offset_ < length_) {
        if (turn >= budget)
            return Progress::yield;
        // sendfile moves at most 0x7ffff000 bytes per call (Linux); ask for the budget.
        const auto want =
            static_cast<std::size_t>(std::min<uint64_t>(length_ - offset_, budget - turn));
        auto off = static_cast<off_t>(offset_);
        ssize_t n = ::sendfile(socket, file_.get(), &off, want);
        if (n > 0) {
            offset_ += static_cast<uint64_t>(n);
            turn += static_cast<uint64_t>(n);
            continue;
        }
        if (n == 0)
            return Progress::short_file;  // end of file before `length`
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return Progress::would_block;
        ec = std::error_code(errno, std::system_category());
        return Progress::failed;
    }
    return Progress::done;
}

FileBody::Progress FileBody::read_some(std::string& out, std::size_t max, std::error_code& ec) {
    if (offset_ >= length_)
        return Progress::done;
    const auto want = static_cast<std::size_t>(std::min<uint64_t>(length_ - offset_, max));
    const std::size_t before = out.size();
    out.resize(before + want);
    for (;;) {
        ssize_t n = ::pread(file_.get(), out.data() + before, want, static_cast<off_t>(offset_));
        if (n > 0) {
            out.resize(before + static_cast<std::size_t>(n));
            offset_ += static_cast<uint64_t>(n);
            return Progress::yield;
        }
        out.resize(before);
        if (n == 0)
            return Progress::short_file;
        if (errno == EINTR)
            continue;
        ec = std::error_code(errno, std::system_category());
        return Progress::failed;
    }
}

}  // namespace narwhal::server
