#include "server/http_session.hpp"

#include "asgi/errors.hpp"
#include "asgi/log.hpp"
#include "server/http/head_reader.hpp"
#include "server/io_thread.hpp"
#include "server/ws_session.hpp"

#include <boost/asio/buffer.hpp>

#include <algorithm>

namespace narwhal::server {

namespace net = boost::asio;

namespace {
// Bytes asked of the kernel per read while waiting for a head: one read takes a whole
// typical request, including a 4 KiB body, without growing idle connections much.
constexpr std::size_t head_read_size = 16 * 1024;
// Upper bound per read while streaming a body.
constexpr std::size_t body_read_size = 64 * 1024;
// How long a closing connection keeps draining input so the client sees our response
// instead of a reset.
constexpr auto linger_time = std::chrono::seconds(2);
}  // namespace

HttpSession::HttpSession(Stream stream, ServerContext& ctx, IoThread& io,
                         std::shared_ptr<const asgi::Peer> peer)
    : stream_(std::move(stream)), ctx_(ctx), lane_(ctx.assign_lane()), io_(io),
      peer_(std::move(peer)), timer_(stream_.get_executor()) {}

HttpSession::~HttpSession() {
    first_request_arrived();  // or never will
    io_.remove_session(this);
}

void HttpSession::first_request_arrived() {
    if (awaiting_first_) {
        awaiting_first_ = false;
        ctx_.awaiting_first_request.fetch_sub(1, std::memory_order_relaxed);
    }
}

void HttpSession::start() {
    io_.add_session(this);
    counted_ = true;  // the listener counted it at accept
    awaiting_first_ = true;
    ctx_.awaiting_first_request.fetch_add(1, std::memory_order_relaxed);
    if (ctx_.proxy.protocol)
        return start_proxy_header();
    proxy_trusted_ = ctx_.proxy.headers && ctx_.proxy.trusted.trusts_peer(*peer_);
    start_stream();
}

void HttpSession::start_stream() {
    if (stream_.is_tls())
        return do_handshake();
    set_wait(Wait::keep_alive, ctx_.limits.keep_alive);
    do_read();
}

// --- TLS handshake ----------------------------------------------------------------

void HttpSession::do_handshake() {
    // A client that stalls mid-handshake holds a connection as one that stalls mid-head.
    set_wait(Wait::handshake, ctx_.limits.header);
    stream_.tls().async_handshake(Stream::Tls::server, [self = shared_from_this()](error_code ec) {
        self->on_handshake(ec);
    });
}

void HttpSession::on_handshake(error_code ec) {
    if (phase_ == Phase::closed)
        return;
    if (ec)
        return handshake_failed(ec.message());
    auto peer = std::make_shared<asgi::Peer>(*peer_);
    peer->tls_info = describe_connection(stream_.tls().native_handle(), stream_.tls_config());
    peer_ = std::move(peer);
    set_wait(Wait::keep_alive, ctx_.limits.keep_alive);
    do_read();
}

void HttpSession::handshake_failed(std::string_view why) {
    // Scanners, plain HTTP sent to the TLS port, clients without an acceptable
    // certificate: routine on a public port, so debug level; the count says how many.
    ctx_.stats.tls_handshake_failures.fetch_add(1, std::memory_order_relaxed);
    log::debug("TLS handshake failed from {}: {}", peer_->client_label(), why);
    close_now();
}

void HttpSession::admitted() {
    // Any thread (the interpreter's, usually): continue on this connection's own thread.
    io_.post([self = shared_from_this()] { self->on_admitted(); });
}

void HttpSession::fail(error_code ec, const char* what) {
    if (ec == net::error::eof || ec == net::error::connection_reset ||
        ec == net::error::operation_aborted || ec == net::error::broken_pipe)
        return;
    log::debug("connection {}: {}", what, ec.message());
}

// --- reading ---------------------------------------------------------------------

void HttpSession::maybe_read() {
    if (reading_)
        return;
    switch (phase_) {
    case Phase::idle: do_read(); break;
    case Phase::request:
        if (!request_.body_done) {
            if (request_.credit > 0) {
                // The client owes us body bytes: bound its silence.
                set_wait(Wait::body, ctx_.limits.body);
                do_read();
            } else if (wait_ == Wait::body) {
                clear_wait();  // the app is the slow one now, not the client
            }
        } else if (!response_.done() && buffer_.size() < ctx_.limits.read_window) {
            // Body complete: keep one read pending to notice a client that goes away;
            // what arrives is the next pipelined request, bounded by the read window.
            do_read();
        }
        break;
    case Phase::admission:  // nothing more is read for a request that waits for a slot
    case Phase::closing:
    case Phase::lingering:
    case Phase::closed: break;
    }
}

void HttpSession::do_read() {
    reading_ = true;
    std::size_t want = head_read_size;
    if (phase_ == Phase::request && !request_.body_done)
        want = std::clamp(request_.credit, head_read_size, body_read_size);
    stream_.async_read_some(
        buffer_.prepare(want),
        [self = shared_from_this()](error_code ec, std::size_t n) { self->on_read(ec, n); });
}

void HttpSession::on_read(error_code ec, std::size_t n) {
    if (phase_ == Phase::lingering)
        return on_linger_read(ec, n);  // a read from before the close: drain as well
    reading_ = false;
    if (phase_ == Phase::closed)
        return;
    if (ec) {
        fail(ec, "read");
        // The client is gone (or half-closed, which HTTP/1.1 treats the same).
        if (phase_ == Phase::request && !response_.done())
            notify_disconnect();
        if (output_.writing()) {
            // Nothing more for this client: the write in flight ends, then the close.
            end_request();
            phase_ = Phase::closing;
            return;
        }
        close_now();
        return;
    }
    buffer_.commit(n);
    process();
}

void HttpSession::process() {
    if (phase_ == Phase::idle)
        parse_head();
    else if (phase_ == Phase::request && !request_.body_done)
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
    auto read = http::read_request_head(buffer_.data(), ctx_.limits.head, ctx_.limits.body_limit,
                                        body_, ctx_.limits.websocket);
    if (read.outcome == http::HeadRead::Outcome::incomplete) {
        if (wait_ != Wait::header)
            set_wait(Wait::header, ctx_.limits.header);  // from the head's first byte
        return;
    }
    clear_wait();
    first_request_arrived();
    record_ = {};
    record_.received = RequestRecord::clock::now();
    request_id_.clear();
    if (read.head && !ctx_.defaults.request_id_header.empty()) {
        asgi::assign_request_id(*read.head, ctx_.defaults.request_id_header, ctx_.request_ids);
        request_id_.assign(read.head->request_id_view());
    }
    // An invalid head's method is a view into the buffer: read before the consume below.
    record_.method = method_class(read.head ? read.head->method_view() : read.method);
    if (log::access_enabled()) {
        access_user_agent_.clear();
        if (read.head) {
            access_method_.assign(read.head->method_view());
            access_target_.assign(read.head->target_view());
            access_version_ = read.head->version;
            if (log::json())  // only JSON records carry it
                for (const auto& f : read.head->fields())
                    if (read.head->view(f.name) == "user-agent") {
                        access_user_agent_.assign(read.head->view(f.value));
                        break;
                    }
        } else {  // invalid: as much as is known (views into the buffer: before consume)
            access_method_.assign(read.method);
            access_target_.assign(read.target);
            access_version_ = read.version ? read.version : 11;
        }
    }
    buffer_.consume(read.consumed);
    if (read.outcome == http::HeadRead::Outcome::invalid)
        return reply_error(read.status, read.reason, read.detail);
    request_.head = std::move(read.head);  // request_ holds fresh values (end_request)
    if (read.outcome == http::HeadRead::Outcome::websocket)
        return upgrade_to_websocket();
    request_.version = request_.head->version;
    request_.keep_alive = request_.head->keep_alive;
    request_.head_request = request_.head->head_request;
    if (ctx_.health && answer_health())
        return;
    admit();
}

void HttpSession::upgrade_to_websocket() {
    if (reading_ || buffer_.size() != 0) {
        // A read is pending into our buffer (or bytes follow the handshake): the socket
        // cannot change hands cleanly. Clients open a fresh connection for a WebSocket.
        return reply_error(400, "WebSocket upgrade pipelined behind other bytes");
    }
    phase_ = Phase::closed;  // this object is done; the socket moves on
    timer_.stop();
    counted_ = false;  // the connection stays counted, now as a WebSocket
    io_.remove_session(this);
    request_.head->websocket = true;
    std::shared_ptr<const asgi::Peer> peer;
    if (proxy_trusted_)
        peer = forwarded_peer(*peer_, *request_.head, ctx_.proxy.trusted);
    std::make_shared<WsSession>(std::move(stream_), ctx_, lane_, io_, peer ? peer : peer_,
                                std::move(request_.head))
        ->start();
}

void HttpSession::admit() {
    switch (lane_.admission->acquire(shared_from_this())) {
    case asgi::Admission::Result::admitted: dispatch_request(); break;
    case asgi::Admission::Result::queued:
        phase_ = Phase::admission;
        set_wait(Wait::queue, ctx_.limits.queue);
        break;
    case asgi::Admission::Result::refused: shed("admission queue full (--limit-queue)"); break;
    }
}

void HttpSession::on_admitted() {
    if (phase_ != Phase::admission) {
        lane_.admission->release();  // the slot came too late: pass it on
        return;
    }
    clear_wait();
    dispatch_request();
    maybe_read();
}

// Holds an admission slot. Hands the request to the app: the head and whatever body
// came with it as one `request` event.
void HttpSession::dispatch_request() {
    phase_ = Phase::request;
    request_.id = ++ctx_.next_request_id;
    record_.dispatched = RequestRecord::clock::now();
    request_.body_done = body_.done();
    // With "Expect: 100-continue" the body is not read (nor 100 sent) until the app asks.
    request_.expect_pending = request_.head->expect_continue && !request_.body_done;
    request_.credit = request_.expect_pending ? 0 : ctx_.limits.read_window;
    // A malformed start of the body is answered before the app hears of the request.
    if (!request_.body_done && !read_body_bytes()) {
        lane_.admission->release();
        return;
    }
    if (proxy_trusted_)
        request_.peer = forwarded_peer(*peer_, *request_.head, ctx_.proxy.trusted);
    // From here the slot belongs to the channel, which releases it when the cycle ends.
    request_.channel =
        std::make_shared<asgi::Channel>(request_.id, shared_from_this(), lane_.admission);
    // The deadline counts from when the app is handed the request (after any queue wait,
    // which --timeout-queue bounds on its own).
    if (ctx_.limits.request.count() > 0 &&
        timer_.set(Deadline::request, clock::now() + ctx_.limits.request))
        start_timer();
    if (!push_event(asgi::Event::Kind::request, !request_.body_done)) {
        request_.channel->detach();  // gives the admission slot back
        end_request();
        return shed("interpreter queue full (--inbox-capacity)");
    }
    ctx_.count_request();
}

// Decodes buffered body bytes, at most the credit. False when the body is malformed or
// too large: the connection is then answering that, or closed.
bool HttpSession::read_body_bytes() {
    std::size_t used = 0;
    auto status = body_.feed(buffer_.data(), request_.credit, request_.body_pending, used);
    buffer_.consume(used);
    if (status != http::BodyReader::Status::bad_request &&
        status != http::BodyReader::Status::too_large) {
        request_.body_done = body_.done();
        return true;
    }
    const bool too_large = status == http::BodyReader::Status::too_large;
    const char* reason = too_large ? "body over --limit-request-body" : body_.reason();
    if (request_.channel) {
        // The app sees the client go away; the client gets the error if nothing of the
        // app's response has left yet.
        notify_disconnect();
        if (response_.head_written()) {
            close_now();
            return false;
        }
        end_request();
    }
    reply_error(too_large ? 413 : 400, reason);
    return false;
}

void HttpSession::feed_body() {
    if (!read_body_bytes())
        return;
    if (!request_.body_pending.empty() || request_.body_done)
        push_event(asgi::Event::Kind::body, !request_.body_done);
}

// Every event about the current request goes to the interpreter through here; request
// and body events take the body bytes read so far. Only a new request can be refused
// (the inbox is full): false then.
bool HttpSession::push_event(asgi::Event::Kind kind, bool more_body) {
    asgi::Event ev;
    ev.kind = kind;
    ev.channel = request_.channel;
    if (kind == asgi::Event::Kind::request || kind == asgi::Event::Kind::body) {
        record_.bytes_in += request_.body_pending.size();
        ev.body = std::move(request_.body_pending);
        request_.body_pending.clear();
        ev.more_body = more_body;
    }
    if (kind != asgi::Event::Kind::request) {
        lane_.inbox->push(std::move(ev));
        return true;
    }
    ev.head = std::move(request_.head);
    ev.peer = request_.peer ? request_.peer : peer_;
    return lane_.inbox->push_request(ev);
}

// The connection is done with the request: the app's later commands for it are stale.
void HttpSession::end_request() {
    request_ = {};
    response_ = {};
    timer_.clear(Deadline::request);
}

void HttpSession::finish_request() {
    // A server that is shutting down answers what it has, then closes.
    const bool keep_alive =
        response_.keep_alive() && !ctx_.draining.load(std::memory_order_relaxed);
    if (!request_.native)
        request_done();
    end_request();
    if (!keep_alive)
        return close_gracefully();
    phase_ = Phase::idle;
    set_wait(Wait::keep_alive, ctx_.limits.keep_alive);
    process();  // a pipelined request may already be buffered
}

void HttpSession::request_done() {
    record_.finished = RequestRecord::clock::now();
    if (log::access_enabled()) {
        auto known = [](const std::string& s) -> std::string_view {
            if (s.empty())
                return "-";
            return s;
        };
        using seconds = std::chrono::duration<double>;
        log::access({.client = request_peer().client_label(),
                     .method = known(access_method_),
                     .target = known(access_target_),
                     .http_version = access_version_,
                     .status = record_.status,
                     .bytes_out = record_.bytes_out,
                     .duration_s = seconds(record_.total()).count(),
                     .queue_s = seconds(record_.queue_wait()).count(),
                     .app_s = seconds(record_.app_time()).count(),
                     .request_id = request_id_,
                     .user_agent = access_user_agent_,
                     .worker = ctx_.pid,
                     .interpreter = lane_.index});
    }
    ctx_.metrics->observe_request(record_.method, record_.status,
                                  std::chrono::nanoseconds(record_.total()).count(),
                                  std::chrono::nanoseconds(record_.queue_wait()).count(),
                                  record_.bytes_in, record_.bytes_out);
    record_ = {};
    request_id_.clear();
}

// --- errors and closing ---------------------------------------------------------

// The request, if any, is already ended: the client gets `status` and the connection
// closes after it. It gets an access line like an answer of the app's, with what is known
// of the request ("-" for what is not).
void HttpSession::reply_error(int status, const char* reason, const char* detail) {
    log::debug("{} {}: {}", status, http::reason_phrase(status), reason);
    if (record_.received == RequestRecord::clock::time_point{})
        record_.received = RequestRecord::clock::now();  // timed out before a head came
    record_.status = status;
    std::string answer = http::error_response(status, ctx_.defaults, detail, request_id_);
    request_done();
    phase_ = Phase::closing;
    queue_write(std::move(answer));
}

// Load shedding: the request is refused with 503 (and Retry-After) before the app sees it.
void HttpSession::shed(const char* reason) {
    ctx_.stats.shed.fetch_add(1, std::memory_order_relaxed);
    log::warning("{}", asgi::errors::load_shed_warning);
    reply_error(503, reason);
}

void HttpSession::notify_disconnect() {
    if (!request_.channel || request_.disconnect_sent)
        return;
    request_.disconnect_sent = true;
    request_.channel->cancel_wait();
    push_event(asgi::Event::Kind::disconnect);
}

void HttpSession::on_server_shutdown() {
    switch (phase_) {
    case Phase::request:
        // In flight: the response goes out with "connection: close" if its head is not
        // written yet (the draining flag is set), and the connection closes after it.
        return;
    case Phase::admission:
        if (lane_.admission->cancel(this)) {
            ctx_.stats.shed.fetch_add(1, std::memory_order_relaxed);
            return reply_error(503, "shutting down");
        }
        break;  // admitted() is on its way; on_admitted passes the slot on
    case Phase::closed: return;
    case Phase::idle:
        // Accepted just before the listener closed: its client is sending the first
        // request now. It is served with "connection: close" (a worker replaced under
        // load must fail no request); its keep-alive wait bounds a silent one.
        if (awaiting_first_)
            return;
        break;
    default: break;
    }
    close_now();
}

void HttpSession::close_gracefully() {
    if (phase_ == Phase::closed || phase_ == Phase::lingering)
        return;
    phase_ = Phase::closing;
    if (output_.writing())
        return;  // on_write comes back here
    if (stream_.is_tls()) {
        // A close_notify first: a client sees the end as clean, and OpenSSL 3.5 clients
        // (Python 3.13's ssl among them) resume no session whose connection ended without
        // one. The shutdown then reads until the client's own close_notify, which drains
        // what the client still sends; the linger deadline bounds one that never answers.
        phase_ = Phase::lingering;
        set_wait(Wait::linger, linger_time);
        stream_.tls().async_shutdown(
            [self = shared_from_this()](error_code) { self->close_now(); });
        return;
    }
    error_code ec;
    stream_.socket().shutdown(net::socket_base::shutdown_send, ec);
    if (ec)
        return close_now();
    // Drain what the client still sends so closing does not turn into a reset that
    // could destroy our response in flight; bounded by linger_time.
    phase_ = Phase::lingering;
    set_wait(Wait::linger, linger_time);
    if (!reading_)
        do_linger_read();
}

void HttpSession::do_linger_read() {
    buffer_.clear();
    reading_ = true;
    // The raw socket even under TLS: these bytes are only drained, never read.
    stream_.socket().async_read_some(
        buffer_.prepare(head_read_size),
        [self = shared_from_this()](error_code ec, std::size_t n) { self->on_linger_read(ec, n); });
}

void HttpSession::on_linger_read(error_code ec, std::size_t) {
    reading_ = false;
    if (phase_ == Phase::closed || stream_.is_tls())
        return;  // over TLS the shutdown reads (and ends the connection) itself
    if (ec)
        return close_now();
    do_linger_read();
}

void HttpSession::close_now() {
    if (phase_ == Phase::closed)
        return;
    // A cancel that fails means admitted() is on its way: on_admitted passes the slot on.
    if (phase_ == Phase::admission)
        lane_.admission->cancel(this);
    // A response cut short (the app aborted it, the client left) still gets its line,
    // with the status its head carried, as in uvicorn, which logs at the head.
    if (phase_ == Phase::request && record_.status != 0)
        request_done();
    phase_ = Phase::closed;
    if (counted_) {
        counted_ = false;
        ctx_.connection_closed();
    }
    if (!response_.done())
        notify_disconnect();
    end_request();
    timer_.stop();
    error_code ec;
    stream_.socket().close(ec);
    io_.remove_session(this);
}

}  // namespace narwhal::server
