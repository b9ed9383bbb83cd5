// One HTTP/1.1 connection: reads and parses requests, hands each to the interpreter as
// typed events, and writes the responses the interpreter sends back as commands.
// Requests on a connection are handled one at a time; pipelined bytes wait in the read
// buffer (bounded by the read window) until the current response is complete.
//
// The state is explicit: the connection's Phase, the Request in progress and its
// response (an http::ResponseEncoder). Each request starts from fresh values
// (`request_ = {}`, `response_ = {}`), so nothing of one request leaks into the next.
#pragma once

#include "asgi/admission.hpp"
#include "asgi/channel.hpp"
#include "asgi/events.hpp"
#include "server/connection.hpp"
#include "server/deadline_timer.hpp"
#include "server/file_body.hpp"
#include "server/http/body_reader.hpp"
#include "server/http/response_encoder.hpp"
#include "server/proxy_protocol.hpp"
#include "server/read_buffer.hpp"
#include "server/request_record.hpp"
#include "server/server_context.hpp"
#include "server/stream.hpp"
#include "server/write_queue.hpp"

#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/beast/core/error.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

namespace narwhal::server {

class IoThread;
using Socket = boost::asio::generic::stream_protocol::socket;

class HttpSession final : public Connection,
                          public asgi::AdmissionWaiter,
                          public std::enable_shared_from_this<HttpSession> {
public:
    HttpSession(Stream stream, ServerContext& ctx, IoThread& io,
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

    enum class Phase : uint8_t {
        idle,       // between requests: waiting for the next head, or reading it
        admission,  // a head is parsed; waiting for a --limit-concurrency slot
        request,    // the app has the request: its body is read, its response written
        closing,    // no further requests: what is queued is written, then lingering
        lingering,  // the send side is shut down; input is drained until the client closes
        closed,
    };

    // The request in progress, from its parsed head to the end of its response.
    struct Request {
        std::unique_ptr<asgi::RequestHead> head;  // until it goes to the app
        std::string body_pending;                 // body bytes read, not yet handed to the app
        std::shared_ptr<asgi::Channel> channel;   // while the app has the request
        uint64_t id = 0;
        std::size_t credit = 0;  // body bytes the app is ready to take
        int version = 11;
        bool keep_alive = true;  // the client allows another request after this one
        bool head_request = false;
        bool body_done = false;
        bool expect_pending = false;  // "Expect: 100-continue" not answered yet
        bool disconnect_sent = false;
        // The response's body is a file (http.response.pathsend): sent once the bytes
        // queued before it (the head) have left.
        std::optional<FileBody> file;
        // The peer as a trusted proxy's headers name it; null: the connection's (peer_).
        std::shared_ptr<const asgi::Peer> peer;
        // Answered by the server itself (a health path): no access line, no metrics.
        bool native = false;
    };

    void do_read();
    void on_read(error_code ec, std::size_t n);
    void process();
    void maybe_read();
    void parse_head();
    void upgrade_to_websocket();
    // A health path (server/health.hpp): answered here, without the app or a slot.
    bool answer_health();
    void admit();
    void on_admitted();
    void dispatch_request();
    bool read_body_bytes();
    void feed_body();
    bool push_event(asgi::Event::Kind kind, bool more_body = false);
    void end_request();
    void finish_request();
    // The request's response is complete (or was an error the server answered): its
    // access line and metrics. Once per request that got a response.
    void request_done();

    void on_start(asgi::Command&& cmd);
    void on_body(asgi::Command&& cmd);
    void on_file(asgi::Command&& cmd);
    void on_credit(std::size_t credit);
    void write_head(std::string& out, std::size_t first_body_size, bool more,
                    bool body_in_out = true);

    void queue_write(std::string&& bytes);
    void do_write();
    void on_write(error_code ec, std::size_t n);
    void on_output_idle();
    void do_send_file();
    void on_send_file_ready(error_code ec);

    // `detail`: the body, when the client should read more than the status's own text.
    void reply_error(int status, const char* reason, const char* detail = nullptr);
    void shed(const char* reason);
    void notify_disconnect();
    void close_gracefully();
    void do_linger_read();
    void on_linger_read(error_code ec, std::size_t n);
    void close_now();
    void fail(error_code ec, const char* what);

    // What the connection is waiting for, if anything: one at a time. With the
    // request's own deadline (--timeout-request), they share one timer.
    enum class Wait : uint8_t {
        none,
        proxy_header,
        handshake,
        keep_alive,
        header,
        queue,
        body,
        send,
        linger
    };
    enum class Deadline : uint8_t { wait, request };
    void set_wait(Wait w, clock::duration d);
    void clear_wait();
    void start_timer();
    void on_timer(error_code ec);
    void on_wait_expired(Wait w);
    void on_request_deadline();

    // PROXY protocol: its header first of all (bounded by --timeout-header), before TLS.
    void start_proxy_header();
    void do_proxy_read();
    void on_proxy_readable(error_code ec);
    void on_proxy_header(const proxy_protocol::Header& header);
    void proxy_header_failed(std::string_view why);
    // The connection's first bytes of its own: TLS handshake, or the first request.
    void start_stream();
    // The peer the current request's app and access line see.
    const asgi::Peer& request_peer() const { return request_.peer ? *request_.peer : *peer_; }

    // TLS: the handshake first (bounded by --timeout-header), then the requests.
    void do_handshake();
    void on_handshake(error_code ec);
    void handshake_failed(std::string_view why);
    // TLS: a pathsend file goes through the stream in pieces (no sendfile).
    void send_file_piece();
    void finish_file();

    Stream stream_;
    ServerContext& ctx_;
    InterpreterLane lane_;  // the interpreter that serves this connection
    IoThread& io_;
    std::shared_ptr<const asgi::Peer> peer_;
    ReadBuffer buffer_;
    DeadlineTimer<Deadline, 2> timer_;
    Wait wait_ = Wait::none;
    Phase phase_ = Phase::idle;

    Request request_;
    // The request body's framing. Not in Request: read_request_head resets it for every
    // request, and resetting it again with the request would be the same work twice.
    http::BodyReader body_;
    http::ResponseEncoder response_;
    // For the access log line, set when a head is read (also an invalid one, as far as
    // its request line goes; empty: not known); kept across requests so their capacity is
    // reused, and not in Request, as an error answered after end_request logs them too.
    std::string access_method_;
    std::string access_target_;
    int access_version_ = 11;
    std::string access_user_agent_;
    RequestRecord record_;
    // The request's id (--request-id-header), for its response, access line and error
    // answers; kept here rather than in the record so its capacity is reused.
    std::string request_id_;

    WriteQueue output_;

    bool counted_ = false;         // this connection still counts in Stats::connections
    bool awaiting_first_ = false;  // counts in ServerContext::awaiting_first_request
    void first_request_arrived();
    bool reading_ = false;
    bool file_waiting_ = false;
    // The peer is a --forwarded-allow-ips proxy and --proxy-headers is on: each request's
    // X-Forwarded-* and Forwarded fields are read.
    bool proxy_trusted_ = false;
    std::string proxy_bytes_;  // a PROXY header's bytes taken so far (while incomplete)  // a wait
                               // for the socket to take more of a file is pending
};

}  // namespace narwhal::server
