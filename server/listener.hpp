// Listening sockets (TCP, Unix, or an inherited fd) and the accept loop that deals
// new connections out to the I/O threads round-robin.
#pragma once

#include "server/server_context.hpp"

#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

namespace narwhal::server {

class IoThread;

struct ListenSpec {
    std::string host;
    uint16_t port = 0;
    std::string uds;
    int fd = -1;
    int backlog = 2048;
    // SO_REUSEPORT: several processes bind the same port, the kernel spreads connections.
    bool reuse_port = false;
    // false: bind only. A master holds such a socket to check the address and keep the
    // port, while its workers listen on their own SO_REUSEPORT sockets.
    bool listen = true;
    // Only for the description: https:// instead of http://.
    bool tls = false;
};

class Listener {
public:
    using Acceptor = boost::asio::basic_socket_acceptor<boost::asio::generic::stream_protocol>;

    // Binds and listens; throws std::system_error (with the address in the message) when
    // the address is in use or invalid.
    Listener(boost::asio::io_context& ioc, const ListenSpec& spec);

    // Human-readable address for the start-up line: "http://127.0.0.1:8000",
    // "unix socket /run/app.sock", "socket 3".
    const std::string& description() const { return description_; }
    uint16_t port() const { return port_; }

    void start(ServerContext& ctx, std::vector<std::unique_ptr<IoThread>>& threads);
    // Gives up the socket without closing it (the master hands it to its workers) and
    // returns its descriptor. The listener is then closed; a Unix socket's file stays.
    int release();
    void close();

    // --limit-connections: accepting pauses at the limit (the kernel backlog holds new
    // connections) and resumes when a connection closes. paused() is safe from any
    // thread; resume() runs on the listener's thread.
    bool paused() const { return paused_.load(std::memory_order_relaxed); }
    void resume();

private:
    void do_accept();
    void on_accept(boost::system::error_code ec, boost::asio::generic::stream_protocol::socket s);

    Acceptor acceptor_;
    boost::asio::steady_timer retry_timer_;
    ServerContext* ctx_ = nullptr;
    std::vector<std::unique_ptr<IoThread>>* threads_ = nullptr;
    std::size_t next_ = 0;
    bool unix_ = false;
    bool closed_ = false;
    std::atomic<bool> paused_{false};
    uint16_t port_ = 0;
    std::string description_;
    std::string uds_path_;   // the socket file this listener created, removed on close()
    std::string unix_name_;  // a Unix socket's path, for the ASGI scope's "server"
};

}  // namespace narwhal::server
