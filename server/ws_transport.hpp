// The stream under Beast's websocket::stream: the connection's stream (its socket, or TLS
// over it), passed through unchanged except for the one response Beast writes itself, the
// 101 of the handshake.
// Beast 1.74 adds "Server: Boost.Beast/<version>" to that response whenever no Server
// field was decorated in (websocket/impl/accept.hpp, build_response), so neither
// --no-server-header nor a quiet server could hold. The first bytes written are held
// until the head is complete; that one line is dropped and the head leaves in one write.
// Everything after the head, in both directions, goes straight to the socket.
//
// It also lets the session write frames of its own beside Beast's writes: a socket's
// queued publications go out as one gather write of (header, shared payload) pairs
// (server frames are unmasked, so the payload goes to the kernel as it is). The session
// never does that while Beast writes one of its messages; but Beast writes control
// frames on its own (the pong answering a ping, keep-alive pings, the close), so
// whichever of the two comes second waits here until the first is on the wire whole.
#pragma once

#include "server/stream.hpp"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/version.hpp>
#include <boost/beast/websocket/teardown.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace narwhal::server {

// Removes Beast's own "Server: Boost.Beast/..." line from a serialised response head
// (ending at the empty line). Our Server field, when set, comes from the decorator.
void drop_library_server_line(std::string& head);
// Whether a serialised handshake response accepted permessage-deflate.
bool accepts_deflate(std::string_view head);

// RFC 6455 5.2: the header of an unmasked, final frame of `size` payload bytes (text or
// binary), written to `out` (room for max_frame_head). Returns its length: 2, 4 or 10.
inline constexpr std::size_t max_frame_head = 10;
std::size_t encode_frame_head(uint8_t* out, bool text, std::size_t size);

class WsTransport {
public:
    using Socket = Stream::Socket;
    using executor_type = Stream::executor_type;
    using error_code = boost::beast::error_code;

    explicit WsTransport(Stream stream) : stream_(std::move(stream)) {}

    // The socket itself: for shutdown and close (and the close handshake's teardown,
    // which over TLS sends no close_notify: the WebSocket close frames already said
    // goodbye), and for Beast's get_lowest_layer.
    Socket& next_layer() { return stream_.socket(); }
    // The stream: for the HTTP answers written instead of a handshake.
    Stream& stream() { return stream_; }
    executor_type get_executor() { return stream_.get_executor(); }

    template <class MutableBuffers, class Handler>
    void async_read_some(const MutableBuffers& buffers, Handler&& handler) {
        stream_.async_read_some(buffers, std::forward<Handler>(handler));
    }

    template <class ConstBuffers, class Handler>
    void async_write_some(const ConstBuffers& buffers, Handler&& handler) {
        namespace net = boost::asio;
        if (head_written_) {
            if (frames_writing_) {  // after the session's frames
                auto h = std::make_shared<std::decay_t<Handler>>(std::forward<Handler>(handler));
                deferred_beast_ = [this, buffers, h] { beast_write_some(buffers, std::move(*h)); };
                return;
            }
            return beast_write_some(buffers, std::forward<Handler>(handler));
        }
        const std::size_t n = net::buffer_size(buffers);
        const std::size_t before = head_.size();
        head_.resize(before + n);
        net::buffer_copy(net::buffer(head_.data() + before, n), buffers);
        auto ex = net::get_associated_executor(handler, stream_.get_executor());
        if (head_.find("\r\n\r\n") == std::string::npos) {
            // Not the whole head yet: taken as written; Beast sends the rest at once.
            net::post(ex,
                      [h = std::forward<Handler>(handler), n]() mutable { h(error_code{}, n); });
            return;
        }
        head_written_ = true;
        drop_library_server_line(head_);
        deflate_ = accepts_deflate(head_);
        net::async_write(stream_, net::buffer(head_),
                         net::bind_executor(ex, [this, h = std::forward<Handler>(handler),
                                                 n](error_code ec, std::size_t) mutable {
                             head_ = {};
                             h(ec, ec ? 0 : n);
                         }));
    }

    // permessage-deflate was negotiated: every message goes through Beast (compressed).
    bool deflate() const { return deflate_; }

    // The session's own frames (see the top of this file), written whole; `buffers` must
    // stay valid until `handler(error_code, std::size_t)` runs. Not while a message of
    // the session's goes through Beast.
    template <class ConstBuffers, class Handler>
    void async_write_frames(const ConstBuffers& buffers, Handler&& handler) {
        namespace net = boost::asio;
        if (beast_writing_) {  // after Beast's control frame
            auto h = std::make_shared<std::decay_t<Handler>>(std::forward<Handler>(handler));
            pending_frames_ = [this, buffers, h] { async_write_frames(buffers, std::move(*h)); };
            return;
        }
        frames_writing_ = true;
        auto ex = net::get_associated_executor(handler, stream_.get_executor());
        net::async_write(stream_, buffers,
                         net::bind_executor(ex, [this, h = std::forward<Handler>(handler)](
                                                    error_code ec, std::size_t n) mutable {
                             frames_writing_ = false;
                             // A Beast write that waited goes first (its handler keeps the session,
                             // and so this transport, alive); the session's next frames wait for
                             // it.
                             if (auto beast = std::exchange(deferred_beast_, nullptr))
                                 beast();
                             h(ec, n);
                         }));
    }

private:
    // A control frame is at most 127 bytes, far under what one write_some is given, so
    // Beast's write is whole once a call writes everything it was given (or fails).
    template <class ConstBuffers, class Handler>
    void beast_write_some(const ConstBuffers& buffers, Handler&& handler) {
        namespace net = boost::asio;
        beast_writing_ = true;
        const std::size_t want = net::buffer_size(buffers);
        auto ex = net::get_associated_executor(handler, stream_.get_executor());
        stream_.async_write_some(
            buffers, net::bind_executor(ex, [this, want, h = std::forward<Handler>(handler)](
                                                error_code ec, std::size_t n) mutable {
                std::function<void()> frames;
                if (ec || n >= want) {
                    beast_writing_ = false;
                    // Taken before the handler runs: it may release the last reference to
                    // the session; the frames' own handler keeps it alive.
                    frames = std::exchange(pending_frames_, nullptr);
                }
                h(ec, n);
                if (frames)
                    frames();  // checks again: Beast may have started another write
            }));
    }

    Stream stream_;
    std::string head_;  // the handshake response, until it is written
    bool head_written_ = false;
    bool deflate_ = false;
    bool beast_writing_ = false;            // a Beast write_some is in flight
    bool frames_writing_ = false;           // the session's frames are being written
    std::function<void()> deferred_beast_;  // a Beast write waiting for the frames
    std::function<void()> pending_frames_;  // the session's frames waiting for Beast
};

// Beast's close handshake ends by tearing the transport down: that is the socket's.
inline void teardown(boost::beast::role_type role, WsTransport& t, boost::beast::error_code& ec) {
    using boost::beast::websocket::teardown;
    teardown(role, t.next_layer(), ec);
}

template <class TeardownHandler>
void async_teardown(boost::beast::role_type role, WsTransport& t, TeardownHandler&& handler) {
    using boost::beast::websocket::async_teardown;
    async_teardown(role, t.next_layer(), std::forward<TeardownHandler>(handler));
}

}  // namespace narwhal::server
