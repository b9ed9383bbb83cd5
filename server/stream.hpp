// A connection's byte stream: its socket, or TLS over it. One type for both, so the HTTP
// and WebSocket sessions are written once for either: the branch per operation costs
// nothing next to the system call behind it, where sessions templated on the stream type
// would be compiled (and kept in the instruction cache) twice.
#pragma once

#include "server/tls_context.hpp"

#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/ssl/stream.hpp>

#include <memory>
#include <optional>
#include <utility>

namespace narwhal::server {

class Stream {
public:
    using Socket = boost::asio::generic::stream_protocol::socket;
    using Tls = boost::asio::ssl::stream<Socket>;
    using executor_type = Socket::executor_type;

    explicit Stream(Socket socket) : plain_(std::move(socket)) {}
    // TLS with `config`, which the stream keeps: a reload must not free the context an
    // open connection's SSL was made from (Asio's context owns its callbacks).
    Stream(Socket socket, std::shared_ptr<TlsConfig> config)
        : config_(std::move(config)),
          tls_(std::make_unique<Tls>(std::move(socket), config_->context)) {}
    Stream(Stream&&) = default;
    Stream& operator=(Stream&&) = default;

    executor_type get_executor() { return socket().get_executor(); }
    // The socket under TLS, or the plain one.
    Socket& socket() { return tls_ ? tls_->next_layer() : *plain_; }
    bool is_tls() const { return tls_ != nullptr; }
    Tls& tls() { return *tls_; }
    const TlsConfig& tls_config() const { return *config_; }

    template <class Buffers, class Handler> void async_read_some(const Buffers& b, Handler&& h) {
        if (tls_)
            tls_->async_read_some(b, std::forward<Handler>(h));
        else
            plain_->async_read_some(b, std::forward<Handler>(h));
    }
    template <class Buffers, class Handler> void async_write_some(const Buffers& b, Handler&& h) {
        if (tls_)
            tls_->async_write_some(b, std::forward<Handler>(h));
        else
            plain_->async_write_some(b, std::forward<Handler>(h));
    }

private:
    std::shared_ptr<TlsConfig> config_;  // before tls_: outlives the SSL made from it
    std::unique_ptr<Tls> tls_;
    std::optional<Socket> plain_;
};

}  // namespace narwhal::server
