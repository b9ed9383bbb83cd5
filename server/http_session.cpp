#include "server/http_session.hpp"

#include "asgi/log.hpp"
#include "asgi/response_state.hpp"
#include "server/http/head_scanner.hpp"
#include "server/http/ws_upgrade.hpp"
#include "server/io_thread.hpp"
#include "server/ws_session.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <fmt/format.h>

#include <charconv>

namespace narwhal::server {

namespace net = boost::asio;
namespace bhttp = boost::beast::http;

namespace {
// Bytes asked of the kernel per read while waiting for a head: one read takes a whole
// typical request, including a 4 KiB body, without growing idle connections much.
constexpr std::size_t head_read_size = 16 * 1024;
// Upper bound per read while streaming a body.
constexpr std::size_t body_read_size = 64 * 1024;
// How long a closing connection keeps draining input so the client sees our response
// instead of a reset.
constexpr auto linger_time = std::chrono::seconds(2);

const char* error_body(int status) {
    switch (status) {
    case 400: return "Invalid HTTP request received.";
    case 413: return "Request body too large.";
    case 414: return "Request-URI too long.";
    case 431: return "Request header fields too large.";
    case 501: return "Unsupported transfer coding.";
    case 405: return "Method not allowed.";
    case 408: return "Request timeout.";
    case 426: return "Upgrade required: this server speaks WebSocket version 13.";
    case 503: return "Service unavailable.";
    case 504: return "Gateway timeout: the application did not answer in time.";
    case 505: return "HTTP version not supported.";
    default: return "Error.";
    }
}

int status_for(const boost::beast::error_code& ec) {
    if (ec == bhttp::error::header_limit)
        return 431;
    if (ec == bhttp::error::body_limit)
        return 413;
    return 400;
}
}  // namespace

HttpSession::HttpSession(Socket socket, ServerContext& ctx, IoThread& io,
                         std::shared_ptr<const asgi::Peer> peer)
    : socket_(std::move(socket)), ctx_(ctx), io_(io), peer_(std::move(peer)),
      timer_(socket_.get_executor()) {}

HttpSession::~HttpSession() { io_.remove_session(this); }

void HttpSession::start() {
    io_.add_session(this);
    counted_ = true;  // the listener counted it at accept
    set_wait(Wait::keep_alive, ctx_.limits.keep_alive);
    do_read();
}

void HttpSession::admitted() {
    // Any thread (the interpreter's, usually): continue on this connection's own thread.
    net::post(socket_.get_executor(), [self = shared_from_this()] { self->on_admitted(); });
}

void HttpSession::fail(error_code ec, const char* what) {
    if (ec == net::error::eof || ec == net::error::connection_reset ||
        ec == net::error::operation_aborted || ec == net::error::broken_pipe)
        return;
    log::debug("connection {}: {}", what, ec.message());
}

// --- reading ---------------------------------------------------------------------

void HttpSession::maybe_read() {
    if (reading_ || closing_ || closed_)
        return;
    if (!in_request_) {
        do_read();
    } else if (waiting_admission_) {
        return;  // nothing more is read for a request that waits for a slot
    } else if (!body_done_) {
        if (credit_ > 0) {
            // The client owes us body bytes: bound its silence.
            set_wait(Wait::body, ctx_.limits.body);
            do_read();
        } else if (wait_ == Wait::body) {
            clear_wait();  // the app is the slow one now, not the client
        }
    } else if (!response_done_ && buffer_.size() < ctx_.limits.read_window) {
        // Body complete: keep one read pending to notice a client that goes away; what
        // arrives is the next pipelined request, bounded by the read window.
        do_read();
    }
}

void HttpSession::do_read() {
    reading_ = true;
    std::size_t want = head_read_size;
    if (in_request_ && !body_done_)
        want = std::clamp(credit_, head_read_size, body_read_size);
    socket_.async_read_some(buffer_.prepare(want),
                            [self = shared_from_this()](error_code ec, std::size_t n) {
                                self->on_read(ec, n);
                            });
}

void HttpSession::on_read(error_code ec, std::size_t n) {
    reading_ = false;
    if (closed_)
        return;
    if (ec) {
        fail(ec, "read");
        // The client is gone (or half-closed, which HTTP/1.1 treats the same).
        if (in_request_ && !response_done_)
            notify_disconnect();
        if (writing_) {
            closing_ = true;  // on_write finishes the close
            return;
        }
        close_now();
        return;
    }
    buffer_.commit(n);
    process();
}

void HttpSession::process() {
    if (closing_ || closed_)
        return;
    if (!in_request_)
        parse_head();
    else if (!body_done_)
        feed_body();
    maybe_read();
}

void HttpSession::parse_head() {
    if (buffer_.size() == 0) {
        // Idle keep-alive connection: give back a buffer a large body grew (never under
        // a pending read, which owns the prepared region).
        if (!reading_ && buffer_.capacity() > 2 * head_read_size)
            buffer_.shrink();
        return;
    }
    auto scan = http::scan_head(buffer_.data(), ctx_.limits.head);
    if (scan.status == http::HeadStatus::incomplete) {
        if (wait_ != Wait::header)
            set_wait(Wait::header, ctx_.limits.header);  // from the head's first byte
        return;
    }
    clear_wait();
    if (scan.status != http::HeadStatus::ok)
        return reply_error(http::http_status(scan.status), scan.reason);

    std::size_t skip = 2 * scan.skip;  // empty lines before the request line, CRLF each
    buffer_.consume(skip);
    head_ = std::make_unique<asgi::RequestHead>();
    parser_.emplace(*head_);
    // The scanner already enforced the head limits; Beast's own must not be lower.
    parser_->header_limit(static_cast<std::uint32_t>(ctx_.limits.head.head + 4));
    parser_->body_limit(ctx_.limits.body_limit);  // a Content-Length over it fails here: 413
    parser_->eager(false);

    error_code ec;
    std::size_t used = parser_->put(net::buffer(buffer_.data().data(), scan.size - skip), ec);
    if (!ec && used != scan.size - skip)
        return reply_error(400, "head not fully parsed");
    buffer_.consume(used);
    if (ec || !parser_->is_header_done()) {
        if (parser_->error_status())
            return reply_error(parser_->error_status(), parser_->error_reason());
        return reply_error(status_for(ec), ec ? "malformed request" : "incomplete head");
    }
    if (auto up = http::check_websocket_upgrade(*head_); up.websocket) {
        if (up.status)
            return reply_error(up.status, up.reason);
        return upgrade_to_websocket();
    }
    if (parser_->chunked_request())
        body_.reset_chunked(ctx_.limits.body_limit);
    else if (auto length = parser_->content_length(); length && *length > 0)
        body_.reset_length(*length, ctx_.limits.body_limit);
    else
        body_.reset_none();
    admit();
}

void HttpSession::upgrade_to_websocket() {
    if (reading_ || buffer_.size() != 0) {
        // A read is pending into our buffer (or bytes follow the handshake): the socket
        // cannot change hands cleanly. Clients open a fresh connection for a WebSocket.
        return reply_error(400, "WebSocket upgrade pipelined behind other bytes");
    }
    closed_ = true;  // this object is done; the socket moves on
    timer_.cancel();
    counted_ = false;  // the connection stays counted, now as a WebSocket
    io_.remove_session(this);
    head_->websocket = true;
    std::make_shared<WsSession>(std::move(socket_), ctx_, io_, peer_, std::move(head_))->start();
}

void HttpSession::admit() {
    switch (ctx_.admission->acquire(shared_from_this())) {
    case asgi::Admission::Result::admitted:
        dispatch_request();
        break;
    case asgi::Admission::Result::queued:
        waiting_admission_ = true;
        set_wait(Wait::queue, ctx_.limits.queue);
        break;
    case asgi::Admission::Result::refused:
        ctx_.stats.shed.fetch_add(1, std::memory_order_relaxed);
        reply_error(503, "admission queue full (--limit-queue)");
        break;
    }
}

void HttpSession::on_admitted() {
    if (!waiting_admission_ || closed_) {
        ctx_.admission->release();  // the slot came too late: pass it on
        return;
    }
    waiting_admission_ = false;
    clear_wait();
    dispatch_request();
    maybe_read();
}

void HttpSession::dispatch_request() {
    in_request_ = true;
    request_id_ = ++ctx_.next_request_id;
    channel_ = std::make_shared<asgi::Channel>(request_id_, shared_from_this(), ctx_.admission);
    // The deadline counts from when the app is handed the request (after any queue wait,
    // which --timeout-queue bounds on its own).
    if (ctx_.limits.request.count() > 0) {
        request_deadline_ = clock::now() + ctx_.limits.request;
        ensure_timer(request_deadline_);
    }
    keep_alive_ = head_->keep_alive;
    head_request_ = head_->head_request;
    version_ = head_->version;
    body_done_ = body_.done();
    expect_pending_ = head_->expect_continue && !body_done_;
    // With "Expect: 100-continue" the body is not read (nor 100 sent) until the app asks.
    credit_ = expect_pending_ ? 0 : ctx_.limits.read_window;
    if (log::access_enabled()) {
        access_method_.assign(head_->method_view());
        access_target_.assign(head_->target_view());
    }
    status_ = 0;
    start_headers_.clear();
    app_length_.reset();
    has_start_ = head_written_ = chunked_ = response_done_ = disconnect_sent_ = false;
    body_allowed_ = true;

    if (!body_done_)
        parse_body_bytes();
    if (closing_)
        return;

    asgi::Event ev;
    ev.kind = asgi::Event::Kind::request;
    ev.channel = channel_;
    ev.head = std::move(head_);
    ev.peer = peer_;
    ev.body = std::move(body_pending_);
    body_pending_.clear();
    ev.more_body = !body_done_;
    if (!ctx_.inbox->push_request(ev)) {
        in_request_ = false;
        channel_->detach();  // gives the admission slot back
        channel_.reset();
        ctx_.stats.shed.fetch_add(1, std::memory_order_relaxed);
        return reply_error(503, "interpreter queue full (--inbox-capacity)");
    }
    ctx_.stats.requests.fetch_add(1, std::memory_order_relaxed);
}

void HttpSession::parse_body_bytes() {
    std::size_t used = 0;
    auto status = body_.feed(buffer_.data(), credit_, body_pending_, used);
    buffer_.consume(used);
    if (status == http::BodyReader::Status::bad_request ||
        status == http::BodyReader::Status::too_large) {
        int code = status == http::BodyReader::Status::too_large ? 413 : 400;
        if (in_request_ && channel_) {
            // The app sees the client go away; the client gets the error if nothing of
            // the app's response has left yet.
            notify_disconnect();
            if (head_written_ || has_start_) {
                close_now();
                return;
            }
            in_request_ = false;
            channel_.reset();
        }
        reply_error(code, code == 413 ? "body over --limit-request-body" : body_.reason());
        return;
    }
    body_done_ = body_.done();
}

void HttpSession::feed_body() {
    parse_body_bytes();
    if (closing_ || closed_)
        return;
    if (!body_pending_.empty() || body_done_) {
        asgi::Event ev;
        ev.kind = asgi::Event::Kind::body;
        ev.channel = channel_;
        ev.body = std::move(body_pending_);
        body_pending_.clear();
        ev.more_body = !body_done_;
        ctx_.inbox->push(std::move(ev));
    }
}

// --- commands from the interpreter ------------------------------------------------

void HttpSession::on_command(asgi::Command&& cmd) {
    if (closed_ || !in_request_ || cmd.request != request_id_)
        return;  // stale: the connection closed or moved on to another request
    switch (cmd.kind) {
    case asgi::Command::Kind::start: on_start(std::move(cmd)); break;
    case asgi::Command::Kind::body: on_body(std::move(cmd)); break;
    case asgi::Command::Kind::credit: on_credit(cmd.credit); break;
    case asgi::Command::Kind::abort: close_now(); break;
    case asgi::Command::Kind::release: break;
    }
}

void HttpSession::on_start(asgi::Command&& cmd) {
    // A start on its own: no body came with it, so the app is about to stream (or wait);
    // the client gets the head now.
    record_start(cmd);
    if (!head_written_) {
        write_response_head(0, true);
        do_write();
    }
}

void HttpSession::record_start(asgi::Command& cmd) {
    status_ = cmd.status;
    start_headers_ = std::move(cmd.headers);
    has_start_ = true;
    for (const auto& [name, value] : start_headers_) {
        if (boost::beast::iequals(name, "content-length")) {
            uint64_t v = 0;
            auto [p, err] = std::from_chars(value.data(), value.data() + value.size(), v);
            if (err == std::errc() && p == value.data() + value.size())
                app_length_ = v;
        } else if (boost::beast::iequals(name, "connection") &&
                   boost::beast::iequals(value, "close")) {
            keep_alive_ = false;
        }
    }
}

void HttpSession::write_response_head(std::size_t first_body_size, bool more) {
    head_written_ = true;
    body_allowed_ = !head_request_ && asgi::status_has_body(status_);
    http::ResponseHeadSpec spec;
    spec.status = status_;
    spec.version = version_;
    spec.app_headers = &start_headers_;
    spec.app_gave_length = app_length_.has_value();
    if (!asgi::status_has_body(status_)) {
        spec.framing = http::Framing::none;
    } else if (app_length_) {
        spec.framing = http::Framing::content_length;
    } else if (!more) {
        // One body message: its length is known, and the response leaves in one write.
        spec.framing = http::Framing::content_length;
        spec.content_length = first_body_size;
    } else if (head_request_) {
        spec.framing = http::Framing::none;
    } else if (version_ == 11) {
        spec.framing = http::Framing::chunked;
        chunked_ = true;
    } else {
        spec.framing = http::Framing::none;  // HTTP/1.0: the close delimits the body
        keep_alive_ = false;
    }
    // A request body the app did not read to the end cannot be skipped safely.
    if (!body_done_ || ctx_.draining.load(std::memory_order_relaxed))
        keep_alive_ = false;
    spec.close = !keep_alive_;
    std::string out;
    out.reserve(256 + (more ? 0 : first_body_size));
    http::append_response_head(out, spec, ctx_.defaults);
    if (log::access_enabled()) {
        std::string client = peer_->client_host.empty()
                                 ? std::string("unix")
                                 : fmt::format("{}:{}", peer_->client_host, peer_->client_port);
        log::access(client, access_method_, access_target_, version_, status_);
    }
    pending_.push_back(std::move(out));
}

void HttpSession::on_body(asgi::Command&& cmd) {
    if (cmd.status != 0)
        record_start(cmd);  // start and first body travelled together
    if (!has_start_ || response_done_)
        return;
    if (!head_written_)
        write_response_head(cmd.body.size(), cmd.more);
    std::size_t app_bytes = body_allowed_ ? cmd.body.size() : 0;
    std::string& out = pending_.empty() ? pending_.emplace_back() : pending_.back();
    if (body_allowed_ && !cmd.body.empty()) {
        if (chunked_) {
            fmt::format_to(std::back_inserter(out), "{:x}\r\n", cmd.body.size());
            out.append(cmd.body);
            out.append("\r\n");
        } else if (out.empty()) {
            out = std::move(cmd.body);
        } else {
            out.append(cmd.body);
        }
    }
    if (!cmd.more) {
        response_done_ = true;
        if (chunked_ && body_allowed_)
            out.append("0\r\n\r\n");
    }
    pending_app_bytes_ += app_bytes;
    do_write();
}

void HttpSession::on_credit(std::size_t credit) {
    credit_ += credit;
    if (expect_pending_) {
        expect_pending_ = false;
        if (!has_start_)
            queue_write(version_ == 10 ? "HTTP/1.0 100 Continue\r\n\r\n"
                                       : "HTTP/1.1 100 Continue\r\n\r\n");
    }
    process();
}

// --- writing ----------------------------------------------------------------------

void HttpSession::queue_write(std::string&& bytes, std::size_t app_bytes) {
    pending_.push_back(std::move(bytes));
    pending_app_bytes_ += app_bytes;
    do_write();
}

void HttpSession::do_write() {
    if (writing_ || pending_.empty() || closed_)
        return;
    writing_ = true;
    inflight_.swap(pending_);
    inflight_app_bytes_ = pending_app_bytes_;
    pending_app_bytes_ = 0;
    gather_.clear();
    for (const auto& s : inflight_)
        gather_.emplace_back(s.data(), s.size());
    net::async_write(socket_, gather_, [self = shared_from_this()](error_code ec, std::size_t n) {
        self->on_write(ec, n);
    });
}

void HttpSession::on_write(error_code ec, std::size_t) {
    writing_ = false;
    inflight_.clear();
    std::size_t app_bytes = std::exchange(inflight_app_bytes_, 0);
    if (closed_)
        return;
    if (ec) {
        fail(ec, "write");
        if (in_request_)
            notify_disconnect();
        close_now();
        return;
    }
    if (app_bytes && channel_ &&
        channel_->on_written(app_bytes, ctx_.limits.send_low_water)) {
        asgi::Event ev;
        ev.kind = asgi::Event::Kind::drained;
        ev.channel = channel_;
        ctx_.inbox->push(std::move(ev));
    }
    if (!pending_.empty())
        return do_write();
    if (in_request_ && response_done_)
        return finish_request();
    if (closing_)
        close_gracefully();
}

void HttpSession::finish_request() {
    in_request_ = false;
    channel_.reset();
    parser_.reset();
    head_.reset();
    request_deadline_ = clock::time_point::max();
    if (!keep_alive_) {
        close_gracefully();
        return;
    }
    set_wait(Wait::keep_alive, ctx_.limits.keep_alive);
    process();  // a pipelined request may already be buffered
}

// --- errors and closing ---------------------------------------------------------

void HttpSession::reply_error(int status, const char* reason) {
    log::debug("{} {}: {}", status, http::reason_phrase(status), reason);
    closing_ = true;
    std::string extra = status == 503   ? "retry-after: 1\r\n"
                        : status == 426 ? "sec-websocket-version: 13\r\n"
                                        : "";
    queue_write(http::server_response(status, error_body(status), ctx_.defaults, extra));
}

void HttpSession::notify_disconnect() {
    if (!channel_ || disconnect_sent_)
        return;
    disconnect_sent_ = true;
    channel_->cancel_wait();
    asgi::Event ev;
    ev.kind = asgi::Event::Kind::disconnect;
    ev.channel = channel_;
    ctx_.inbox->push(std::move(ev));
}

void HttpSession::on_server_shutdown() {
    if (closed_)
        return;
    if (waiting_admission_ && ctx_.admission->cancel(this)) {
        waiting_admission_ = false;
        ctx_.stats.shed.fetch_add(1, std::memory_order_relaxed);
        reply_error(503, "shutting down");
        return;
    }
    if (!in_request_) {
        close_now();
        return;
    }
    // In flight: the response goes out with "connection: close" if its head is not
    // written yet, and the connection closes after it.
    keep_alive_ = false;
}

void HttpSession::close_gracefully() {
    if (closed_ || lingering_)
        return;
    closing_ = true;
    if (writing_)
        return;  // on_write comes back here
    error_code ec;
    socket_.shutdown(net::socket_base::shutdown_send, ec);
    if (ec)
        return close_now();
    // Drain what the client still sends so closing does not turn into a reset that
    // could destroy our response in flight; bounded by linger_time.
    lingering_ = true;
    set_wait(Wait::linger, linger_time);
    if (!reading_) {
        buffer_.clear();
        reading_ = true;
        socket_.async_read_some(buffer_.prepare(head_read_size),
                                [self = shared_from_this()](error_code ec, std::size_t n) {
                                    self->on_linger_read(ec, n);
                                });
    }
}

void HttpSession::on_linger_read(error_code ec, std::size_t n) {
    reading_ = false;
    if (closed_)
        return;
    if (ec)
        return close_now();
    buffer_.clear();
    reading_ = true;
    socket_.async_read_some(buffer_.prepare(head_read_size),
                            [self = shared_from_this()](error_code ec, std::size_t n) {
                                self->on_linger_read(ec, n);
                            });
}

void HttpSession::close_now() {
    if (closed_)
        return;
    closed_ = true;
    closing_ = true;
    if (waiting_admission_) {
        waiting_admission_ = false;
        if (!ctx_.admission->cancel(this))
            waiting_admission_ = true;  // admitted() is on its way; on_admitted releases
    }
    if (counted_) {
        counted_ = false;
        ctx_.connection_closed();
    }
    if (in_request_ && !response_done_)
        notify_disconnect();
    in_request_ = false;
    channel_.reset();
    error_code ec;
    timer_.cancel();
    socket_.close(ec);
    io_.remove_session(this);
}

// --- timer ------------------------------------------------------------------------
// One timer per connection serves every wait. Moving a deadline later does not touch
// the timer: it fires at the old time, finds nothing due and re-arms. Only a deadline
// earlier than the armed one re-arms it at once.

void HttpSession::set_wait(Wait w, clock::duration d) {
    wait_ = w;
    wait_deadline_ = clock::now() + d;
    ensure_timer(wait_deadline_);
}

void HttpSession::ensure_timer(clock::time_point when) {
    if (when >= armed_for_ || closed_)
        return;
    armed_for_ = when;
    timer_.expires_at(when);
    timer_.async_wait([self = shared_from_this()](error_code ec) { self->on_timer(ec); });
}

void HttpSession::on_timer(error_code ec) {
    if (ec == net::error::operation_aborted || closed_)
        return;  // re-armed (that wait is pending) or closed
    armed_for_ = clock::time_point::max();
    auto now = clock::now();
    if (wait_ != Wait::none && now >= wait_deadline_) {
        Wait expired = std::exchange(wait_, Wait::none);
        on_wait_expired(expired);
        if (closed_)
            return;
    }
    if (in_request_ && now >= request_deadline_) {
        request_deadline_ = clock::time_point::max();
        on_request_deadline();
        if (closed_)
            return;
    }
    auto next = std::min(wait_ != Wait::none ? wait_deadline_ : clock::time_point::max(),
                         in_request_ ? request_deadline_ : clock::time_point::max());
    if (next != clock::time_point::max())
        ensure_timer(next);
}

void HttpSession::on_wait_expired(Wait w) {
    switch (w) {
    case Wait::none:
        break;
    case Wait::keep_alive:
        if (!in_request_)
            close_now();  // idle keep-alive connection
        break;
    case Wait::header:
        if (!in_request_)
            reply_error(408, "request head not complete within --timeout-header");
        break;
    case Wait::queue:
        if (waiting_admission_ && ctx_.admission->cancel(this)) {
            waiting_admission_ = false;
            ctx_.stats.shed.fetch_add(1, std::memory_order_relaxed);
            ctx_.stats.queue_timeouts.fetch_add(1, std::memory_order_relaxed);
            reply_error(503, "no slot within --timeout-queue");
        }
        break;
    case Wait::body:
        if (in_request_ && !body_done_) {
            // The client stopped sending its body: the app sees it gone.
            notify_disconnect();
            if (head_written_ || has_start_) {
                close_now();
            } else {
                in_request_ = false;
                channel_.reset();
                reply_error(408, "request body stalled longer than --timeout-body");
            }
        }
        break;
    case Wait::linger:
        close_now();
        break;
    }
}

void HttpSession::on_request_deadline() {
    if (!in_request_ || response_done_ || !channel_)
        return;
    asgi::Event ev;
    ev.kind = asgi::Event::Kind::deadline;
    ev.channel = channel_;
    ctx_.inbox->push(std::move(ev));
    if (head_written_) {
        close_now();  // part of the response is out: abort
        return;
    }
    // Nothing sent yet: the client gets 504, and the app's late answer finds the request
    // gone (its commands are stale).
    in_request_ = false;
    channel_.reset();
    reply_error(504, "request deadline (--timeout-request) passed");
}

}  // namespace narwhal::server
