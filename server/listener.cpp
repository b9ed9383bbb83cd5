#include "server/listener.hpp"

#include "asgi/log.hpp"
#include "server/http_session.hpp"
#include "server/io_thread.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <fmt/format.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace narwhal::server {

namespace net = boost::asio;
using generic = net::generic::stream_protocol;

namespace {

// Address and port of a socket address; port -1 for Unix sockets.
std::pair<std::string, int> describe(const sockaddr* sa) {
    char buf[INET6_ADDRSTRLEN] = {};
    switch (sa->sa_family) {
    case AF_INET: {
        auto* in = reinterpret_cast<const sockaddr_in*>(sa);
        ::inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
        return {buf, ntohs(in->sin_port)};
    }
    case AF_INET6: {
        auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
        ::inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
        return {buf, ntohs(in6->sin6_port)};
    }
    case AF_UNIX: {
        auto* un = reinterpret_cast<const sockaddr_un*>(sa);
        return {un->sun_path, -1};
    }
    default: return {"", 0};
    }
}

std::shared_ptr<asgi::Peer> peer_of(generic::socket& s) {
    auto peer = std::make_shared<asgi::Peer>();
    boost::system::error_code ec;
    auto local = s.local_endpoint(ec);
    if (!ec) {
        auto [host, port] = describe(local.data());
        peer->server_host = host;
        peer->server_port = port;
    }
    auto remote = s.remote_endpoint(ec);
    if (!ec && remote.data()->sa_family != AF_UNIX) {
        auto [host, port] = describe(remote.data());
        peer->client_host = host;
        peer->client_port = port;
    }
    return peer;
}

net::ip::address resolve_host(net::io_context& ioc, const std::string& host) {
    boost::system::error_code ec;
    auto addr = net::ip::make_address(host, ec);
    if (!ec)
        return addr;
    net::ip::tcp::resolver resolver(ioc);
    auto results = resolver.resolve(host, "", ec);
    if (ec || results.empty())
        throw std::system_error(ec, fmt::format("cannot resolve host '{}'", host));
    return results.begin()->endpoint().address();
}

}  // namespace

Listener::Listener(net::io_context& ioc, const ListenSpec& spec)
    : acceptor_(ioc), retry_timer_(ioc) {
    const char* scheme = spec.tls ? "https" : "http";
    boost::system::error_code ec;
    if (spec.fd >= 0) {
        sockaddr_storage ss{};
        socklen_t len = sizeof ss;
        if (::getsockname(spec.fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0)
            throw std::system_error(errno, std::generic_category(),
                                    fmt::format("--fd {}: not a socket", spec.fd));
        int proto = ss.ss_family == AF_UNIX ? 0 : IPPROTO_TCP;
        acceptor_.assign(generic(ss.ss_family, proto), spec.fd, ec);
        if (ec)
            throw std::system_error(ec, fmt::format("--fd {}", spec.fd));
        unix_ = ss.ss_family == AF_UNIX;
        // An inherited socket may not be listening yet (systemd does listen; a test may not).
        acceptor_.listen(spec.backlog, ec);
        auto [host, port] = describe(reinterpret_cast<sockaddr*>(&ss));
        port_ = static_cast<uint16_t>(port < 0 ? 0 : port);
        // The address too: a worker serving its master's socket names what clients use.
        if (unix_) {
            unix_name_ = host;
            description_ = host.empty() ? fmt::format("socket {}", spec.fd)
                                        : fmt::format("socket {} (unix socket {})", spec.fd, host);
        } else {
            bool v6 = ss.ss_family == AF_INET6;
            description_ = v6 ? fmt::format("socket {} ({}://[{}]:{})", spec.fd, scheme, host, port)
                              : fmt::format("socket {} ({}://{}:{})", spec.fd, scheme, host, port);
        }
        return;
    }
    generic::endpoint endpoint;
    if (!spec.uds.empty()) {
        struct stat st{};
        // Replace a stale socket file from an earlier run, never a regular file.
        if (::stat(spec.uds.c_str(), &st) == 0 && S_ISSOCK(st.st_mode))
            ::unlink(spec.uds.c_str());
        endpoint = generic::endpoint(net::local::stream_protocol::endpoint(spec.uds));
        unix_ = true;
        uds_path_ = spec.uds;
        unix_name_ = spec.uds;
    } else {
        endpoint =
            generic::endpoint(net::ip::tcp::endpoint(resolve_host(ioc, spec.host), spec.port));
    }
    auto where = spec.uds.empty() ? fmt::format("{}:{}", spec.host, spec.port) : spec.uds;
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec && !unix_)
        acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec && !unix_ && spec.reuse_port) {
        int one = 1;
        if (::setsockopt(acceptor_.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) !=
            0)
            ec.assign(errno, boost::system::system_category());
    }
    if (!ec)
        acceptor_.bind(endpoint, ec);
    if (!ec && spec.listen)
        acceptor_.listen(spec.backlog, ec);
    if (ec)
        throw std::system_error(ec, fmt::format("could not bind on {}", where));
    if (unix_) {
        ::chmod(spec.uds.c_str(), 0666);  // uvicorn's default permissions
        description_ = fmt::format("unix socket {}", spec.uds);
    } else {
        auto local = acceptor_.local_endpoint();
        auto [host, port] = describe(local.data());
        port_ = static_cast<uint16_t>(port);
        bool v6 = local.data()->sa_family == AF_INET6;
        description_ = v6 ? fmt::format("{}://[{}]:{}", scheme, host, port)
                          : fmt::format("{}://{}:{}", scheme, host, port);
    }
}

void Listener::start(ServerContext& ctx, std::vector<std::unique_ptr<IoThread>>& threads) {
    ctx_ = &ctx;
    threads_ = &threads;
    do_accept();
}

void Listener::do_accept() {
    if (closed_)
        return;
    auto& io = *(*threads_)[next_];
    acceptor_.async_accept(io.context(), [this](boost::system::error_code ec, generic::socket s) {
        on_accept(ec, std::move(s));
    });
}

void Listener::on_accept(boost::system::error_code ec, generic::socket s) {
    if (closed_ || ec == net::error::operation_aborted)
        return;
    if (ec) {
        // Out of descriptors or memory: back off instead of spinning; the kernel
        // backlog holds new connections meanwhile.
        log::warning("accept failed: {}", ec.message());
        retry_timer_.expires_after(std::chrono::milliseconds(100));
        retry_timer_.async_wait([this](boost::system::error_code e) {
            if (!e)
                do_accept();
        });
        return;
    }
    auto& io = *(*threads_)[next_];
    next_ = (next_ + 1) % threads_->size();
    if (!unix_) {
        boost::system::error_code ignored;
        s.set_option(net::ip::tcp::no_delay(true), ignored);
    }
    std::shared_ptr<asgi::Peer> peer = peer_of(s);
    if (unix_) {
        peer->server_host = unix_name_;
        peer->server_port = -1;
    }
    peer->secure = ctx_->tls != nullptr;
    // Counted now, not when the session starts on its thread, so the limit holds even
    // for a burst of accepts.
    ctx_->stats.connections.fetch_add(1, std::memory_order_relaxed);
    io.post([s = std::move(s), ctx = ctx_, &io, peer = std::move(peer)]() mutable {
        // TLS with the configuration current now: a reload affects later handshakes only.
        Stream stream = ctx->tls ? Stream(std::move(s), ctx->tls->current()) : Stream(std::move(s));
        std::make_shared<HttpSession>(std::move(stream), *ctx, io, std::move(peer))->start();
    });
    if (ctx_->stats.connections.load(std::memory_order_relaxed) >= ctx_->limits.max_connections) {
        paused_.store(true);
        // A connection may have closed between the check and the flag: look again.
        if (ctx_->stats.connections.load() < ctx_->limits.max_connections)
            resume();
        return;
    }
    do_accept();
}

void Listener::resume() {
    if (closed_ || !paused_.load())
        return;
    if (ctx_->stats.connections.load() >= ctx_->limits.max_connections)
        return;
    paused_.store(false);
    do_accept();
}

int Listener::release() {
    closed_ = true;
    boost::system::error_code ec;
    return acceptor_.release(ec);
}

void Listener::close() {
    closed_ = true;
    boost::system::error_code ec;
    acceptor_.close(ec);
    retry_timer_.cancel();
    if (!uds_path_.empty())
        ::unlink(uds_path_.c_str());
}

}  // namespace narwhal::server
