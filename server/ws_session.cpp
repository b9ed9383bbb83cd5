#include "server/ws_session.hpp"

#include "asgi/log.hpp"
#include "server/http/response_head.hpp"
#include "server/io_thread.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

namespace narwhal::server {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
namespace bhttp = boost::beast::http;

WsSession::WsSession(Socket socket, ServerContext& ctx, IoThread& io,
                     std::shared_ptr<const asgi::Peer> peer,
                     std::unique_ptr<asgi::RequestHead> head)
    : ws_(std::move(socket)), ctx_(ctx), io_(io), peer_(std::move(peer)),
      // Bounded just above the message limit: Beast 1.74 sizes its read of a compressed
      // frame from the frame's claimed length, unchecked; a bounded buffer turns a forged
      // 2^46-byte claim into a read error instead of a huge allocation. The slack lets
      // Beast's own limit check (close 1009) fire first for real oversized messages.
      read_buffer_(ctx.limits.ws_max_size + 64 * 1024), timer_(ws_.get_executor()) {
    // Beast's handshake works on its own request type: rebuild it from the parsed head.
    upgrade_.method_string(head->method_view());
    upgrade_.target(head->target_view());
    upgrade_.version(head->version);
    for (const auto& f : head->fields())
        upgrade_.insert(head->view(f.name), head->view(f.value));
    request_id_ = ++ctx_.next_request_id;
    head_ = std::move(head);
}

WsSession::~WsSession() { io_.remove_session(this); }

void WsSession::start() {
    io_.add_session(this);
    channel_ = std::make_shared<asgi::Channel>(request_id_, shared_from_this());
    asgi::Event ev;
    ev.kind = asgi::Event::Kind::request;
    ev.channel = channel_;
    ev.head = std::move(head_);
    ev.peer = peer_;
    ctx_.inbox->push(std::move(ev));
    ctx_.stats.requests.fetch_add(1, std::memory_order_relaxed);
}

void WsSession::on_command(asgi::Command&& cmd) {
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
            slow_deadline_ == clock::time_point::max()) {
            slow_deadline_ = clock::now() + ctx_.limits.ws_send_timeout;
            arm_timer(slow_deadline_);
        }
        do_write();
        break;
    case asgi::Command::Kind::ws_close:
        if (phase_ == Phase::connecting) {
            // Closed before the handshake: the client gets 403, as with uvicorn.
            deny(403, "", nullptr);
            break;
        }
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
            deny_status_ = cmd.status;
            deny_headers_ = std::move(cmd.headers);
        }
        deny_body_.append(cmd.body);
        if (cmd.kind == asgi::Command::Kind::body && !cmd.more)
            deny(deny_status_, deny_body_, &deny_headers_);
        break;
    case asgi::Command::Kind::abort:
        closed(1011);
        break;
    case asgi::Command::Kind::credit:
    case asgi::Command::Kind::release:
        break;
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
    bool server_header = ctx_.defaults.server_header;
    ws_.set_option(websocket::stream_base::decorator(
        [server_header, sub = std::move(cmd.body), headers = std::move(cmd.headers),
         extra = ctx_.defaults.extra](websocket::response_type& res) {
            if (server_header)
                res.set(bhttp::field::server, "narwhal");
            if (!sub.empty())
                res.set(bhttp::field::sec_websocket_protocol, sub);
            for (const auto& [name, value] : extra)
                res.insert(name, value);
            for (const auto& [name, value] : headers)
                res.insert(name, value);
        }));
    ws_.async_accept(upgrade_, [self = shared_from_this()](error_code ec) { self->on_accept(ec); });
}

void WsSession::on_accept(error_code ec) {
    if (phase_ == Phase::closed)
        return;
    if (ec) {
        log::debug("websocket handshake failed: {}", ec.message());
        return closed(1006);
    }
    phase_ = Phase::open;
    // An idle gateway holds many sockets: drop what the handshake no longer needs.
    upgrade_path_ = std::string(upgrade_.target());
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
        if (ec == websocket::error::closed)
            code = ws_.reason().code;
        else if (ec == websocket::error::message_too_big)
            code = 1009;
        return closed(code);
    }
    asgi::Event ev;
    ev.kind = asgi::Event::Kind::ws_message;
    ev.channel = channel_;
    ev.body = beast::buffers_to_string(read_buffer_.data());
    ev.text = ws_.got_text();
    read_buffer_.consume(read_buffer_.size());
    if (read_buffer_.capacity() > 16 * 1024)
        read_buffer_.shrink_to_fit();  // a big message need not cost an idle socket later
    --credit_;
    ctx_.inbox->push(std::move(ev));
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
    ws_.text(msg.text);
    ws_.async_write(net::buffer(msg.data), [self = shared_from_this()](error_code ec, std::size_t n) {
        self->on_write(ec, n);
    });
}

void WsSession::on_write(error_code ec, std::size_t) {
    writing_ = false;
    if (phase_ == Phase::closed)
        return;
    if (ec)
        return closed(1006);
    std::size_t sent = outbox_.front().data.size();
    outbox_.pop_front();
    outbox_bytes_ -= sent;
    if (outbox_bytes_ <= ctx_.limits.send_low_water)
        slow_deadline_ = clock::time_point::max();  // caught up
    if (sent && channel_->on_written(sent, ctx_.limits.send_low_water)) {
        asgi::Event ev;
        ev.kind = asgi::Event::Kind::drained;
        ev.channel = channel_;
        ctx_.inbox->push(std::move(ev));
    }
    do_write();
}

void WsSession::do_close() {
    phase_ = Phase::closing;
    ws_.async_close(close_reason_, [self = shared_from_this()](error_code ec) { self->on_close(ec); });
}

void WsSession::on_close(error_code) {
    // The app closed: it knows, but receive() still answers websocket.disconnect.
    closed(close_reason_.code);
}

void WsSession::deny(int status, std::string_view body, const http::HeaderList* headers) {
    phase_ = Phase::closing;
    if (headers) {
        http::ResponseHeadSpec spec;
        spec.status = status;
        spec.app_headers = headers;
        spec.framing = http::Framing::content_length;
        spec.content_length = body.size();
        spec.app_gave_length = http::app_content_length(*headers).has_value();
        spec.close = true;
        raw_out_.clear();
        http::append_response_head(raw_out_, spec, ctx_.defaults);
        raw_out_.append(body);
    } else {
        raw_out_ = http::server_response(status, body, ctx_.defaults);
    }
    net::async_write(ws_.next_layer(), net::buffer(raw_out_),
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
        asgi::Event ev;
        ev.kind = asgi::Event::Kind::ws_closed;
        ev.channel = channel_;
        ev.code = code;
        ctx_.inbox->push(std::move(ev));
    }
}

void WsSession::close_socket() {
    if (phase_ == Phase::closed)
        return;
    phase_ = Phase::closed;
    error_code ignored;
    timer_.cancel();
    ws_.next_layer().shutdown(net::socket_base::shutdown_both, ignored);
    ws_.next_layer().close(ignored);
    ctx_.connection_closed();
    io_.remove_session(this);
}

void WsSession::on_server_shutdown() {
    if (phase_ == Phase::open || phase_ == Phase::accepting) {
        // Keep working for the drain period, then going away (1001).
        drain_deadline_ = clock::now() + ctx_.limits.ws_drain;
        arm_timer(drain_deadline_);
    } else if (phase_ == Phase::connecting) {
        deny(503, "Service unavailable.", nullptr);
    }
}

void WsSession::close_with(uint16_t code, bool drop_queued) {
    if (close_queued_ || phase_ == Phase::closing || phase_ == Phase::closed)
        return;
    if (drop_queued) {
        // Keep only the message being written now: a frame cannot be cut short.
        while (outbox_.size() > (writing_ ? 1u : 0u)) {
            outbox_bytes_ -= outbox_.back().data.size();
            outbox_.pop_back();
        }
    }
    close_queued_ = true;
    close_reason_ = websocket::close_reason(static_cast<websocket::close_code>(code));
    do_write();
}

void WsSession::arm_timer(clock::time_point when) {
    if (when >= armed_for_ || phase_ == Phase::closed)
        return;
    armed_for_ = when;
    timer_.expires_at(when);
    timer_.async_wait([self = shared_from_this()](error_code ec) { self->on_timer(ec); });
}

void WsSession::on_timer(error_code ec) {
    if (ec == net::error::operation_aborted || phase_ == Phase::closed)
        return;
    armed_for_ = clock::time_point::max();
    auto now = clock::now();
    if (now >= drain_deadline_) {
        drain_deadline_ = clock::time_point::max();
        close_with(static_cast<uint16_t>(websocket::close_code::going_away), false);
    }
    if (now >= slow_deadline_) {
        slow_deadline_ = clock::time_point::max();
        log::warning("Closing a WebSocket whose client did not read {} bytes within {} ms "
                     "(--ws-slow-consumer close): {} (id {})",
                     outbox_bytes_, ctx_.limits.ws_send_timeout.count(), upgrade_path_,
                     request_id_);
        // The app learns now (its send() raises); the close frame may never get through
        // to a client that reads nothing, so the socket is cut after one more timeout.
        notify_closed(static_cast<int>(websocket::close_code::policy_error));
        close_with(static_cast<uint16_t>(websocket::close_code::policy_error), true);
        hard_close_deadline_ = now + ctx_.limits.ws_send_timeout;
    }
    if (now >= hard_close_deadline_)
        return close_socket();
    auto next = std::min({drain_deadline_, slow_deadline_, hard_close_deadline_});
    if (next != clock::time_point::max())
        arm_timer(next);
}

}  // namespace narwhal::server
