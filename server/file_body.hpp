// The body of an http.response.pathsend response: `length` bytes of an open file, from
// offset 0, sent with sendfile(2) so they go from the page cache to the socket without
// passing through our memory. It only moves bytes: the session owns the socket, waits for
// it to become writable again, and decides what a short file or an error means.
//
// Why not Asio's async_write: that needs the bytes in a buffer we own, which for a file
// means reading it into memory first - the copy sendfile exists to avoid. Over TLS that
// copy cannot be avoided (the bytes are encrypted in user space): read_some is that path.
#pragma once

#include "asgi/unique_fd.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <system_error>

namespace narwhal::server {

class FileBody {
public:
    FileBody(asgi::UniqueFd file, uint64_t length) : file_(std::move(file)), length_(length) {}

    enum class Progress : uint8_t {
        done,         // every byte is sent
        would_block,  // the socket is full: wait until it is writable, then call again
        yield,        // the turn's budget is spent: let the thread's other work run first
        short_file,   // the file ended before `length` (it shrank while being sent)
        failed,       // the socket failed (`ec`): the client is gone
    };

    // Sends from where the last call stopped, while the socket takes bytes without
    // blocking and at most `budget` bytes. `socket` must be non-blocking.
    Progress send_some(int socket, std::size_t budget, std::error_code& ec);
    // For a stream sendfile cannot write to (TLS encrypts in our memory): appends the next
    // bytes, at most `max`, to `out`. yield: bytes were read, send them and call again;
    // done: nothing is left; short_file or failed (`ec`, a read error) as above.
    Progress read_some(std::string& out, std::size_t max, std::error_code& ec);

    uint64_t sent() const { return offset_; }
    uint64_t length() const { return length_; }

private:
    asgi::UniqueFd file_;
    uint64_t length_;
    uint64_t offset_ = 0;
};

}  // namespace narwhal::server
