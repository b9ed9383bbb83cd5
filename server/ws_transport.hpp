// The stream under Beast's websocket::stream: the connection's stream (its socket, or TLS
// over it), passed through unchanged except for the one response Beast writes itself, the
// 101 of the handshake.
// Beast 1.74 adds "Server: Boost.Beast/<version>" to that response whenever no Server
// field was decorated in (websocket/impl/accept.hpp, build_response), so neither
// --no-server-header nor a quiet server could hold. The first bytes written are held
// until the head is complete; that one line is dropped and the head leaves in one write.
// Everything after the head, in both directions, goes straight to the socket.
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
#include <string>
#include <string_view>
#include <utility>

namespace narwhal::server {

// Removes Beast's own "Server: Boost.Beast/..." line from a serialised response head
// (ending at the empty line). Our Server field, when set, comes from the decorator.
void drop_library_server_line(std::string& head);

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
        if (head_written_)
            return stream_.async_write_some(buffers, std::forward<Handler>(handler));
        namespace net = boost::asio;
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
        net::async_write(stream_, net::buffer(head_),
                         net::bind_executor(ex, [this, h = std::forward<Handler>(handler),
                                                 n](error_code ec, std::size_t) mutable {
                             head_ = {};
                             h(ec, ec ? 0 : n);
                         }));
    }

private:
    Stream stream_;
    std::string head_;  // the handshake response, until it is written
    bool head_written_ = false;
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
