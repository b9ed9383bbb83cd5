// One HTTP/1.1 connection: reads and parses requests, hands each to the interpreter as
// typed events, and writes the responses the interpreter sends back as commands.
// Requests on a connection are handled one at a time; pipelined bytes wait in the read
// buffer (bounded by the read window) until the current response is complete.
#pragma once

#include "asgi/admission.hpp"
#include "asgi/channel.hpp"
#include "asgi/events.hpp"
#include "server/connection.hpp"
#include "server/http/body_reader.hpp"
#include "server/http/request_parser.hpp"
#include "server/read_buffer.hpp"
#include "server/server_context.hpp"

#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace narwhal::server {

class IoThread;
using Socket = boost::asio::generic::stream_protocol::socket;

class HttpSession final : public Connection,
                          public asgi::AdmissionWaiter,
                          public std::enable_shared_from_this<HttpSession> {
public:
    HttpSession(Socket socket, ServerContext& ctx, IoThread& io,
                std::shared_ptr<const asgi::Peer> peer);
    ~HttpSession() override;

    void start();

    // Any thread: a slot under --limit-concurrency became ours.
    void admitted() override;

    // This connection's thread.
    void on_command(asgi::Command&& cmd) override;
    void on_server_shutdown() override;

private:
    IoThread& io_thread() override { return io_; }
    std::shared_ptr<Connection> shared_connection() override { return shared_from_this(); }

    using error_code = boost::beast::error_code;
    using clock = std::chrono::steady_clock;

    void do_read();
    void on_read(error_code ec, std::size_t n);
    void process();
    void parse_head();
    void upgrade_to_websocket();
    void admit();
    void on_admitted();
    void dispatch_request();
    void feed_body();
    void parse_body_bytes();
    void maybe_read();

    void on_start(asgi::Command&& cmd);
    void record_start(asgi::Command& cmd);
    void on_body(asgi::Command&& cmd);
    void on_credit(std::size_t credit);
    void write_response_head(std::size_t first_body_size, bool more);

    void queue_write(std::string&& bytes, std::size_t app_bytes = 0);
    void do_write();
    void on_write(error_code ec, std::size_t n);
    void finish_request();

    void reply_error(int status, const char* reason);
    void notify_disconnect();
    void close_gracefully();
    void on_linger_read(error_code ec, std::size_t n);
    void close_now();

    enum class Wait : uint8_t { none, keep_alive, header, queue, body, linger };
    void set_wait(Wait w, clock::duration d);
    void clear_wait() { wait_ = Wait::none; }
    void ensure_timer(clock::time_point when);
    void on_timer(error_code ec);
    void on_wait_expired(Wait w);
    void on_request_deadline();
    void fail(error_code ec, const char* what);

    Socket socket_;
    ServerContext& ctx_;
    IoThread& io_;
    std::shared_ptr<const asgi::Peer> peer_;
    ReadBuffer buffer_;
    boost::asio::steady_timer timer_;
    clock::time_point armed_for_ = clock::time_point::max();
    Wait wait_ = Wait::none;
    clock::time_point wait_deadline_;
    clock::time_point request_deadline_ = clock::time_point::max();

    // The request in progress.
    std::unique_ptr<asgi::RequestHead> head_;
    std::optional<http::RequestParser> parser_;
    http::BodyReader body_;
    std::shared_ptr<asgi::Channel> channel_;
    uint64_t request_id_ = 0;
    std::string body_pending_;
    std::size_t credit_ = 0;
    bool in_request_ = false;
    bool body_done_ = false;
    bool expect_pending_ = false;
    bool keep_alive_ = true;
    bool head_request_ = false;
    int version_ = 11;
    std::string access_method_;
    std::string access_target_;

    // The response in progress.
    int status_ = 0;
    http::HeaderList start_headers_;
    std::optional<uint64_t> app_length_;
    bool has_start_ = false;
    bool head_written_ = false;
    bool chunked_ = false;
    bool body_allowed_ = true;
    bool response_done_ = false;
    bool disconnect_sent_ = false;

    // Output.
    std::vector<std::string> pending_;
    std::vector<std::string> inflight_;
    std::vector<boost::asio::const_buffer> gather_;
    std::size_t pending_app_bytes_ = 0;
    std::size_t inflight_app_bytes_ = 0;

    bool waiting_admission_ = false;
    bool counted_ = false;
    bool reading_ = false;
    bool writing_ = false;
    bool closing_ = false;  // no further requests on this connection
    bool lingering_ = false;
    bool closed_ = false;
};

}  // namespace narwhal::server
