// One WebSocket connection, from the upgrade request to the close. The interpreter
// decides about the handshake (accept with a subprotocol and headers, close = 403, or an
// HTTP response instead); then messages flow both ways with the same bounds as HTTP:
// at most --ws-max-queue messages wait for the app before the socket stops being read,
// and `await send()` waits while the outbound bytes are above the high-water mark.
#pragma once

#include "asgi/channel.hpp"
#include "asgi/events.hpp"
#include "server/connection.hpp"
#include "server/deadline_timer.hpp"
#include "server/http/response_encoder.hpp"
#include "server/pubsub_hub.hpp"
#include "server/server_context.hpp"
#include "server/ws_transport.hpp"

#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/websocket/stream.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

namespace narwhal::server {

class IoThread;

class WsSession final : public Connection,
                        public PubSubSubscriber,
                        public std::enable_shared_from_this<WsSession> {
public:
    // `lane`: the interpreter of the HTTP connection that upgraded.
    WsSession(Stream stream, ServerContext& ctx, InterpreterLane lane, IoThread& io,
              std::shared_ptr<const asgi::Peer> peer, std::unique_ptr<asgi::RequestHead> head);
    ~WsSession() override;

    // Hands the upgrade request to the interpreter as a "websocket" scope.
    void start();

    void on_command(asgi::Command&& cmd) override;
    void on_server_shutdown() override;
    // A publication of a topic this socket subscribes to: queued as it is (its bytes are
    // shared), or --ws-slow-consumer applies when --pubsub-max-queue are waiting already.
    void on_publication(const asgi::PublicationPtr& p) override;

private:
    using error_code = boost::beast::error_code;
    IoThread& io_thread() override { return io_; }
    std::shared_ptr<Connection> shared_connection() override { return shared_from_this(); }

    void push_event(asgi::Event::Kind kind, std::string body = {}, bool text = false, int code = 0);
    void do_accept(asgi::Command&& cmd);
    void on_accept(error_code ec);
    void do_read();
    void on_read(error_code ec, std::size_t n);
    void do_write();
    // A write of the front in_flight_ messages (one through Beast, or frames) ended.
    void on_write(error_code ec, std::size_t n);
    // The publications at the front of the queue, up to FrameBatch::max, as one write
    // of their frames (no permessage-deflate on this socket: else Beast writes them).
    void do_write_frames();
    // `n` messages at the front were written: counted, taken off the queue.
    void written(std::size_t n);
    void do_close();
    void on_close(error_code ec);
    void deny(int status, std::string_view body);  // a server-made HTTP answer
    void deny_with_app_response();                 // the app's denial response
    void write_denial();
    void on_denied(error_code ec);
    void closed(int code);         // the socket is done: tell the app once, then close
    void notify_closed(int code);  // tell the app once that the socket is closed
    void close_socket();
    // Closes with `code` after what is being written now; queued messages are dropped
    // when `drop_queued` (a slow consumer is not owed them).
    void close_with(uint16_t code, bool drop_queued);
    // --ws-slow-consumer: tells the app, closes with 1008 dropping what is queued, and
    // cuts the socket if the close frame does not get through within --ws-send-timeout.
    void close_slow(std::chrono::steady_clock::time_point now);
    void leave_topics();

    // Who ended the session, for the access log line.
    enum class Closer : uint8_t { client, app, server };
    // The first close decided wins: later ones are consequences of it.
    void note_close(int code, Closer by);
    void log_access();

    using clock = std::chrono::steady_clock;
    // One timer for three deadlines: a slow consumer's (--ws-send-timeout), the shutdown
    // drain (--timeout-ws-drain), and the cut of a socket whose close frame does not get
    // through. Checked in this order when the timer fires.
    enum class Deadline : uint8_t { drain, slow, hard_close };
    void set_deadline(Deadline d, clock::time_point when);
    void start_timer();
    void on_timer(error_code ec);

    boost::beast::websocket::stream<WsTransport> ws_;
    ServerContext& ctx_;
    InterpreterLane lane_;
    IoThread& io_;
    std::shared_ptr<const asgi::Peer> peer_;
    std::unique_ptr<asgi::RequestHead> head_;  // until start() hands it to the interpreter
    boost::beast::http::request<boost::beast::http::empty_body> upgrade_;  // until accepted
    std::string target_;           // the upgrade request's target, for log lines
    std::string request_id_text_;  // its --request-id-header value; empty: none
    std::shared_ptr<asgi::Channel> channel_;
    uint64_t request_id_ = 0;

    enum class Phase : uint8_t { connecting, accepting, open, closing, closed };
    Phase phase_ = Phase::connecting;
    boost::beast::flat_buffer read_buffer_;
    std::size_t credit_ = 0;  // messages the app may still be handed before reading stops
    bool reading_ = false;

    // The app's own message (`data`, counted in outbox_bytes_ and the channel's water
    // marks), or a publication (`pub`, counted in pub_queued_): its bytes are shared.
    struct Outgoing {
        std::string data;
        bool text;
        asgi::PublicationPtr pub;
        std::string_view payload() const { return pub ? std::string_view(pub->data) : data; }
    };
    std::deque<Outgoing> outbox_;
    std::size_t outbox_bytes_ = 0;
    std::size_t pub_queued_ = 0;  // publications in outbox_
    std::size_t in_flight_ = 0;   // messages at the front of outbox_ being written
    // Headers and buffers of one frames write; made at the socket's first publication.
    struct FrameBatch {
        static constexpr std::size_t max = 16;  // frames per write: 32 iovecs, ~16 KiB of 1 KiB
        uint8_t heads[max][max_frame_head];
        boost::asio::const_buffer buffers[2 * max];
    };
    std::unique_ptr<FrameBatch> batch_;
    std::vector<std::string> topics_;  // subscribed to (few per socket: a list)
    bool writing_ = false;
    DeadlineTimer<Deadline, 3> timer_;
    bool close_queued_ = false;
    boost::beast::websocket::close_reason close_reason_;

    // Denial response (websocket.http.response.*), written when its last body arrives.
    http::ResponseEncoder deny_;
    std::string deny_body_;
    std::string raw_out_;
    bool closed_sent_ = false;

    // For the access log line.
    clock::time_point began_ = clock::now();
    int status_ = 101;  // the HTTP status answered instead of the handshake, if any
    int close_code_ = 0;
    Closer closed_by_ = Closer::client;
    bool close_noted_ = false;
    uint64_t messages_in_ = 0;
    uint64_t bytes_in_ = 0;
    uint64_t messages_out_ = 0;
    uint64_t bytes_out_ = 0;
    bool counted_open_ = false;  // counts in Metrics::ws_open (accepted, not closed yet)
};

}  // namespace narwhal::server
