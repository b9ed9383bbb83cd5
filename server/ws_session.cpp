#include "server/ws_session.hpp"

#include "asgi/log.hpp"
#include "server/http/response_head.hpp"
#include "server/io_thread.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include <utility>

namespace narwhal::server {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
namespace bhttp = boost::beast::http;

WsSession::WsSession(Stream stream, ServerContext& ctx, InterpreterLane lane, IoThread& io,
                     std::shared_ptr<const asgi::Peer> peer,
                     std::unique_ptr<asgi::RequestHead> head)
    : ws_(std::move(stream)), ctx_(ctx), lane_(lane), io_(io), peer_(std::move(peer)),
      // Bounded just above the message limit: Beast 1.74 sizes its read of a compressed
      // frame from the frame's claimed length, unchecked; a bounded buffer turns a forged
      // 2^46-byte claim into a read error instead of a huge allocation. The slack lets
      // Beast's own limit check (close 1009) fire first for real oversized messages.
      read_buffer_(ctx.limits.ws_max_size + 64 * 1024), timer_(ws_.get_executor()) {
    target_.assign(head->target_view());
    request_id_text_.assign(head->request_id_view());
    // Beast's handshake works on its own request type: rebuild it from the parsed head.
    // A field sent on several lines is joined into one (RFC 9110 5.3): Beast reads only
    // the first Connection, Upgrade or Sec-WebSocket-Extensions line, while
    // check_websocket_upgrade read them all.
    upgrade_.method_string(head->method_view());
    upgrade_.target(head->target_view());
    upgrade_.version(head->version);
    for (const auto& f : head->fields()) {
        auto name = head->view(f.name);
        auto value = head->view(f.value);
        auto it = upgrade_.find(name);
        if (it == upgrade_.end()) {
            upgrade_.insert(name, value);
            continue;
        }
        std::string joined(it->value());
        joined.append(", ").append(value);
        upgrade_.set(name, joined);
    }
    request_id_ = ++ctx_.next_request_id;
    head_ = std::move(head);
}

WsSession::~WsSession() { io_.remove_session(this); }

void WsSession::start() {
    io_.add_session(this);
    channel_ = std::make_shared<asgi::Channel>(request_id_, shared_from_this());
    push_event(asgi::Event::Kind::request);
    ctx_.count_request();
}

// Every event about this socket goes to the interpreter through here. The request event
// is never refused: a WebSocket holds no admission slot (--limit-connections bounds it).
void WsSession::push_event(asgi::Event::Kind kind, std::string body, bool text, int code) {
    asgi::Event ev;
    ev.kind = kind;
    ev.channel = channel_;
    ev.body = std::move(body);
    ev.text = text;
    ev.code = code;
    if (kind == asgi::Event::Kind::request) {
        ev.head = std::move(head_);
        ev.peer = peer_;
    }
    lane_.inbox->push(std::move(ev));
}

void WsSession::on_command(asgi::Command&& cmd) {
    if (cmd.kind == asgi::Command::Kind::publish)
        return ctx_.pubsub->publish(cmd.publication);  // also after this socket closed
    if (phase_ == Phase::closed || cmd.request != request_id_)
        return;
    switch (cmd.kind) {
    case asgi::Command::Kind::ws_accept:
        if (phase_ == Phase::connecting)
            do_accept(std::move(cmd));
        break;
    case asgi::Command::Kind::ws_send:
        if (phase_ != Phase::open && phase_ != Phase::accepting)
            break;
        outbox_bytes_ += cmd.body.size();
        outbox_.push_back({std::move(cmd.body), cmd.text});
        if (ctx_.limits.ws_close_slow_consumers && outbox_bytes_ > ctx_.limits.send_high_water &&
            !timer_.is_set(Deadline::slow))
            set_deadline(Deadline::slow, clock::now() + ctx_.limits.ws_send_timeout);
        do_write();
        break;
    case asgi::Command::Kind::ws_close:
        if (phase_ == Phase::connecting) {
            // Closed before the handshake: the client gets 403, as with uvicorn.
            deny(403, "");
            break;
        }
        note_close(cmd.status, Closer::app);
        close_queued_ = true;
        close_reason_.code = static_cast<std::uint16_t>(cmd.status);
        close_reason_.reason = cmd.body;
        do_write();
        break;
    case asgi::Command::Kind::ws_credit:
        credit_ += cmd.credit;
        do_read();
        break;
    case asgi::Command::Kind::start:
    case asgi::Command::Kind::body:
        // The denial extension: an HTTP response instead of the handshake.
        if (phase_ != Phase::connecting)
            break;
        if (cmd.status != 0) {
            // The app's start; or, after it, the server's 500 for an app that failed
            // before its response was complete: nothing is written until the last body,
            // so that answer replaces the app's.
            deny_ = {};
            deny_body_.clear();
            deny_.start(cmd.status, std::move(cmd.headers), cmd.facts);
        }
        deny_body_.append(cmd.body);
        if (cmd.kind == asgi::Command::Kind::body && !cmd.more)
            deny_with_app_response();
        break;
    case asgi::Command::Kind::abort:
        note_close(1011, Closer::app);
        closed(1011);
        break;
    case asgi::Command::Kind::ws_subscribe:
        // The app's state said open; a close under way ends the subscription at once.
        if ((phase_ == Phase::open || phase_ == Phase::accepting) && !close_queued_ &&
            ctx_.pubsub->subscribe(io_, cmd.body, this))
            topics_.push_back(std::move(cmd.body));
        break;
    case asgi::Command::Kind::ws_unsubscribe:
        if (ctx_.pubsub->unsubscribe(io_, cmd.body, this))
            std::erase(topics_, cmd.body);
        break;
    case asgi::Command::Kind::credit:
    case asgi::Command::Kind::file:  // pathsend is an http-scope extension only
    case asgi::Command::Kind::publish:
    case asgi::Command::Kind::release: break;
    }
}

void WsSession::do_accept(asgi::Command&& cmd) {
    phase_ = Phase::accepting;
    const auto& lim = ctx_.limits;
    ws_.read_message_max(lim.ws_max_size);
    websocket::stream_base::timeout opt{};
    opt.handshake_timeout = lim.header;
    if (lim.ws_ping_interval.count() > 0) {
        // Beast pings after half the idle time without traffic and gives up after all
        // of it: interval + timeout makes that "ping after the interval, close after the
        // timeout".
        opt.idle_timeout = lim.ws_ping_interval + lim.ws_ping_timeout;
        opt.keep_alive_pings = true;
    } else {
        opt.idle_timeout = websocket::stream_base::none();
        opt.keep_alive_pings = false;
    }
    ws_.set_option(opt);
    if (lim.ws_deflate) {
        websocket::permessage_deflate pmd;
        pmd.server_enable = true;
        ws_.set_option(pmd);
    }
    // The same default fields as every HTTP response (append_response_head); without a
    // Server field Beast would name itself, which WsTransport takes out again.
    ws_.set_option(websocket::stream_base::decorator(
        [defaults = ctx_.defaults, sub = std::move(cmd.body), headers = std::move(cmd.headers),
         rid = request_id_text_](websocket::response_type& res) {
            if (defaults.server_header)
                res.set(bhttp::field::server, "narwhal");
            if (defaults.date_header)
                res.set(bhttp::field::date, http::http_date());
            if (!sub.empty())
                res.set(bhttp::field::sec_websocket_protocol, sub);
            for (const auto& [name, value] : defaults.extra)
                res.insert(name, value);
            bool app_rid = false;
            for (const auto& [name, value] : headers) {
                res.insert(name, value);
                app_rid = app_rid || name == defaults.request_id_header;
            }
            if (!rid.empty() && !defaults.request_id_header.empty() && !app_rid)
                res.insert(defaults.request_id_header, rid);  // the app's own id stands
        }));
    ws_.async_accept(upgrade_, [self = shared_from_this()](error_code ec) { self->on_accept(ec); });
}

void WsSession::on_accept(error_code ec) {
    if (phase_ == Phase::closed)
        return;
    if (ec) {
        log::debug("websocket handshake failed: {}", ec.message());
        note_close(1006, Closer::client);
        return closed(1006);
    }
    phase_ = Phase::open;
    ctx_.metrics->ws_sessions.fetch_add(1, std::memory_order_relaxed);
    ctx_.metrics->ws_open.fetch_add(1, std::memory_order_relaxed);
    counted_open_ = true;
    // An idle gateway holds many sockets: drop what the handshake no longer needs.
    upgrade_ = {};
    credit_ = ctx_.limits.ws_max_queue;
    do_read();
    do_write();
}

void WsSession::do_read() {
    if (reading_ || credit_ == 0 || (phase_ != Phase::open && phase_ != Phase::closing))
        return;
    reading_ = true;
    ws_.async_read(read_buffer_, [self = shared_from_this()](error_code ec, std::size_t n) {
        self->on_read(ec, n);
    });
}

void WsSession::on_read(error_code ec, std::size_t) {
    reading_ = false;
    if (phase_ == Phase::closed)
        return;
    if (ec == websocket::error::buffer_overflow) {
        // Our buffer bound, not Beast's check: the stream is intact, so close it properly.
        notify_closed(1009);
        return close_with(1009, true);
    }
    if (ec) {
        int code = 1006;
        Closer by = Closer::client;
        if (ec == websocket::error::closed) {
            code = ws_.reason().code;
        } else if (ec == websocket::error::message_too_big) {
            code = 1009;
            by = Closer::server;
        } else if (ec == beast::error::timeout) {
            by = Closer::server;  // no answer to our pings
        }
        note_close(code, by);
        return closed(code);
    }
    std::string message = beast::buffers_to_string(read_buffer_.data());
    read_buffer_.consume(read_buffer_.size());
    if (read_buffer_.capacity() > 16 * 1024)
        read_buffer_.shrink_to_fit();  // a big message need not cost an idle socket later
    --credit_;
    ++messages_in_;
    bytes_in_ += message.size();
    ctx_.metrics->ws_messages_in.fetch_add(1, std::memory_order_relaxed);
    ctx_.metrics->ws_bytes_in.fetch_add(message.size(), std::memory_order_relaxed);
    push_event(asgi::Event::Kind::ws_message, std::move(message), ws_.got_text());
    do_read();
}

void WsSession::do_write() {
    if (writing_ || phase_ != Phase::open)
        return;
    if (outbox_.empty()) {
        if (close_queued_)
            do_close();
        return;
    }
    writing_ = true;
    auto& msg = outbox_.front();
    if (msg.pub && !ws_.next_layer().deflate())
        return do_write_frames();
    in_flight_ = 1;
    ws_.text(msg.text);
    std::string_view payload = msg.payload();
    ws_.async_write(
        net::buffer(payload.data(), payload.size()),
        [self = shared_from_this()](error_code ec, std::size_t n) { self->on_write(ec, n); });
}

void WsSession::on_write(error_code ec, std::size_t) {
    writing_ = false;
    if (phase_ == Phase::closed)
        return;
    if (ec) {
        note_close(1006, Closer::client);
        return closed(1006);
    }
    written(in_flight_);
    do_write();
}

void WsSession::written(std::size_t n) {
    std::size_t bytes = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const bool app_message = !outbox_.front().pub;
        std::size_t sent = outbox_.front().payload().size();
        outbox_.pop_front();
        bytes += sent;
        if (app_message)
            outbox_bytes_ -= sent;
        else
            --pub_queued_;
        if (app_message && sent && channel_->on_written(sent, ctx_.limits.send_low_water))
            push_event(asgi::Event::Kind::drained);
    }
    in_flight_ = 0;
    messages_out_ += n;
    bytes_out_ += bytes;
    ctx_.metrics->ws_messages_out.fetch_add(n, std::memory_order_relaxed);
    ctx_.metrics->ws_bytes_out.fetch_add(bytes, std::memory_order_relaxed);
    if (outbox_bytes_ <= ctx_.limits.send_low_water)
        timer_.clear(Deadline::slow);  // caught up
}

void WsSession::do_close() {
    phase_ = Phase::closing;
    ws_.async_close(close_reason_,
                    [self = shared_from_this()](error_code ec) { self->on_close(ec); });
}

void WsSession::on_close(error_code) {
    // The app closed: it knows, but receive() still answers websocket.disconnect.
    closed(close_reason_.code);
}

void WsSession::deny(int status, std::string_view body) {
    status_ = status;
    std::string rid;
    if (!request_id_text_.empty() && !ctx_.defaults.request_id_header.empty())
        rid = ctx_.defaults.request_id_header + ": " + request_id_text_ + "\r\n";
    raw_out_ = http::server_response(status, body, ctx_.defaults, rid);
    write_denial();
}

void WsSession::deny_with_app_response() {
    if (!deny_.started())
        deny_.start(500, {}, {});  // body parts without a start: not a valid answer
    status_ = deny_.status();
    raw_out_.clear();
    // Framed like any HTTP response (decide_framing), and the connection closes after it.
    deny_.append_head(raw_out_, {.keep_alive = false, .request_id = request_id_text_},
                      deny_body_.size(), false, ctx_.defaults);
    deny_.append_body(raw_out_, std::move(deny_body_), false);
    write_denial();
}

void WsSession::write_denial() {
    phase_ = Phase::closing;
    net::async_write(
        ws_.next_layer().stream(), net::buffer(raw_out_),
        [self = shared_from_this()](error_code ec, std::size_t) { self->on_denied(ec); });
}

void WsSession::on_denied(error_code) { closed(1006); }

void WsSession::closed(int code) {
    notify_closed(code);
    close_socket();
}

void WsSession::notify_closed(int code) {
    if (!closed_sent_) {
        closed_sent_ = true;
        channel_->cancel_wait();
        push_event(asgi::Event::Kind::ws_closed, {}, false, code);
    }
}

void WsSession::close_socket() {
    if (phase_ == Phase::closed)
        return;
    phase_ = Phase::closed;
    leave_topics();
    if (log::access_enabled())
        log_access();
    error_code ignored;
    timer_.stop();
    ws_.next_layer().next_layer().shutdown(net::socket_base::shutdown_both, ignored);
    ws_.next_layer().next_layer().close(ignored);
    if (std::exchange(counted_open_, false))
        ctx_.metrics->ws_open.fetch_sub(1, std::memory_order_relaxed);
    ctx_.connection_closed();
    io_.remove_session(this);
}

void WsSession::on_server_shutdown() {
    if (phase_ == Phase::open || phase_ == Phase::accepting) {
        // Keep working for the drain period, then going away (1001).
        set_deadline(Deadline::drain, clock::now() + ctx_.limits.ws_drain);
    } else if (phase_ == Phase::connecting) {
        deny(503, "Service unavailable.");
    }
}

void WsSession::close_with(uint16_t code, bool drop_queued) {
    if (close_queued_ || phase_ == Phase::closing || phase_ == Phase::closed)
        return;
    if (drop_queued) {
        // Keep only the messages being written now: a frame cannot be cut short.
        while (outbox_.size() > (writing_ ? in_flight_ : 0u)) {
            if (outbox_.back().pub)
                --pub_queued_;
            else
                outbox_bytes_ -= outbox_.back().data.size();
            outbox_.pop_back();
        }
    }
    note_close(code, Closer::server);
    close_queued_ = true;
    close_reason_ = websocket::close_reason(static_cast<websocket::close_code>(code));
    do_write();
}

void WsSession::note_close(int code, Closer by) {
    if (std::exchange(close_noted_, true))
        return;
    close_code_ = code;
    closed_by_ = by;
}

void WsSession::log_access() {
    const char* by = closed_by_ == Closer::app      ? "app"
                     : closed_by_ == Closer::server ? "server"
                                                    : "client";
    log::websocket_access({
        .client = peer_->client_label(),
        .target = target_,
        .status = status_,
        .close_code = close_noted_ ? close_code_ : 1006,
        .closed_by = by,
        .seconds = std::chrono::duration<double>(clock::now() - began_).count(),
        .messages_in = messages_in_,
        .bytes_in = bytes_in_,
        .messages_out = messages_out_,
        .bytes_out = bytes_out_,
        .request_id = request_id_text_,
    });
}

void WsSession::set_deadline(Deadline d, clock::time_point when) {
    if (timer_.set(d, when))
        start_timer();
}

void WsSession::start_timer() {
    timer_.start([self = shared_from_this()](error_code ec) { self->on_timer(ec); });
}

void WsSession::on_timer(error_code ec) {
    if (!timer_.fired(ec) || phase_ == Phase::closed)
        return;
    auto now = clock::now();
    timer_.expire(now, [&](Deadline d) {
        switch (d) {
        case Deadline::drain:
            close_with(static_cast<uint16_t>(websocket::close_code::going_away), false);
            break;
        case Deadline::slow:
            log::warning("Closing a WebSocket whose client did not read {} bytes within {} ms "
                         "(--ws-slow-consumer close): {} ({})",
                         outbox_bytes_, ctx_.limits.ws_send_timeout.count(), target_,
                         asgi::request_label(request_id_, request_id_text_));
            close_slow(now);
            break;
        case Deadline::hard_close: close_socket(); break;
        }
    });
    if (timer_.pending())
        start_timer();
}

}  // namespace narwhal::server
