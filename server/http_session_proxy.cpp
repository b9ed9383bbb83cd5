// HttpSession, before anything else on a connection under --proxy-protocol: the PROXY
// protocol header (server/proxy_protocol.hpp parses it) is taken off the socket, and the
// addresses it names become the connection's peer. Then the stream starts as without it:
// the TLS handshake, or the first request.
#include "server/http_session.hpp"

#include "asgi/log.hpp"

#include <cerrno>
#include <cstring>

#include <sys/socket.h>

namespace narwhal::server {

// The header's bytes are taken off the socket exactly: peeked, and consumed only as far
// as they belong to the header, so a TLS handshake or the first request after it find
// their bytes untouched in the socket.
void HttpSession::start_proxy_header() {
    // Only a proxy may name another client; anyone else sending one would be spoofing,
    // and anyone else sending none is not the proxy this listener expects.
    if (!ctx_.proxy.trusted.trusts_peer(*peer_))
        return proxy_header_failed("peer not in --forwarded-allow-ips");
    set_wait(Wait::proxy_header, ctx_.limits.header);
    do_proxy_read();
}

void HttpSession::do_proxy_read() {
    stream_.socket().async_wait(Socket::wait_read, [self = shared_from_this()](error_code ec) {
        self->on_proxy_readable(ec);
    });
}

void HttpSession::on_proxy_readable(error_code ec) {
    if (phase_ == Phase::closed)
        return;
    if (ec)
        return proxy_header_failed(ec.message());
    const int fd = stream_.socket().native_handle();
    char chunk[512];
    ssize_t n = ::recv(fd, chunk, sizeof chunk, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return do_proxy_read();
        return proxy_header_failed(std::strerror(errno));
    }
    if (n == 0)
        return proxy_header_failed("connection closed before its PROXY header");
    const std::size_t had = proxy_bytes_.size();
    proxy_bytes_.append(chunk, static_cast<std::size_t>(n));
    auto parsed = proxy_protocol::parse(proxy_bytes_, *ctx_.proxy.protocol);
    // Consume what belongs to the header: all of it when the header is not complete yet
    // (every byte so far is part of it), else exactly the rest of the header.
    if (parsed.status == proxy_protocol::Parse::Status::invalid)
        return proxy_header_failed(parsed.error);
    const std::size_t take = parsed.status == proxy_protocol::Parse::Status::done
                                 ? parsed.size - had
                                 : static_cast<std::size_t>(n);
    if (::recv(fd, chunk, take, MSG_DONTWAIT) != static_cast<ssize_t>(take))
        return proxy_header_failed("PROXY header bytes vanished");
    if (parsed.status == proxy_protocol::Parse::Status::incomplete)
        return do_proxy_read();
    on_proxy_header(parsed.header);
}

void HttpSession::on_proxy_header(const proxy_protocol::Header& header) {
    proxy_bytes_ = {};
    if (header.has_addresses) {
        auto peer = std::make_shared<asgi::Peer>(*peer_);
        peer->client_host = header.source_host;
        peer->client_port = header.source_port;
        peer->server_host = header.dest_host;
        peer->server_port = header.dest_port;
        peer_ = std::move(peer);
    }
    // The proxy headers of the client's requests are believed only if that client is
    // itself a trusted proxy: the balancer in front has already named the client.
    proxy_trusted_ = ctx_.proxy.headers && ctx_.proxy.trusted.trusts_peer(*peer_);
    clear_wait();
    start_stream();
}

void HttpSession::proxy_header_failed(std::string_view why) {
    // A misconfigured balancer, or someone other than the balancer: debug level, as for
    // failed TLS handshakes; the count says how many.
    ctx_.stats.proxy_protocol_errors.fetch_add(1, std::memory_order_relaxed);
    log::debug("PROXY protocol header from {}: {}", peer_->client_label(), why);
    close_now();
}

}  // namespace narwhal::server
