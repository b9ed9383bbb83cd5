// A WebSocket session as a narwhal.pubsub subscriber: publications queued with their
// shared bytes, the per-subscriber bound and the slow-consumer policy, and leaving every
// topic when the socket closes; close_slow, which the --ws-send-timeout deadline uses
// too. The subscribe/unsubscribe commands are in ws_session.cpp with the other commands.
#include "server/ws_session.hpp"

#include "asgi/log.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include <span>

namespace narwhal::server {

namespace websocket = boost::beast::websocket;

void WsSession::on_publication(const asgi::PublicationPtr& p) {
    if ((phase_ != Phase::open && phase_ != Phase::accepting) || close_queued_)
        return;
    if (pub_queued_ >= ctx_.limits.pubsub_max_queue) {
        if (ctx_.limits.pubsub_drop) {
            ctx_.metrics->pubsub_dropped.fetch_add(1, std::memory_order_relaxed);
            return;
        }
        // A publication cannot wait for one subscriber: under wait and close alike, a
        // subscriber that fell this far behind is closed rather than silently skipped.
        log::warning("Closing a WebSocket subscriber whose client did not take {} queued "
                     "publications (--pubsub-max-queue; --ws-slow-consumer drop would skip "
                     "them instead): {} ({})",
                     pub_queued_, target_, asgi::request_label(request_id_, request_id_text_));
        return close_slow(clock::now());
    }
    outbox_.push_back({{}, p->text, p});
    ++pub_queued_;
    do_write();
}

void WsSession::do_write_frames() {
    // Called by do_write with writing_ set and a publication at the front.
    if (!batch_)
        batch_ = std::make_unique<FrameBatch>();
    std::size_t n = 0;
    for (auto it = outbox_.begin(); it != outbox_.end() && it->pub && n < FrameBatch::max;
         ++it, ++n) {
        const asgi::Publication& p = *it->pub;
        std::size_t head = encode_frame_head(batch_->heads[n], p.text, p.data.size());
        batch_->buffers[2 * n] = boost::asio::buffer(batch_->heads[n], head);
        batch_->buffers[2 * n + 1] = boost::asio::buffer(p.data);
    }
    in_flight_ = n;
    ws_.next_layer().async_write_frames(
        std::span<const boost::asio::const_buffer>(batch_->buffers, 2 * n),
        [self = shared_from_this()](error_code ec, std::size_t n) { self->on_write(ec, n); });
}

void WsSession::leave_topics() {
    for (const std::string& topic : topics_)
        ctx_.pubsub->unsubscribe(io_, topic, this);
    topics_.clear();
}

void WsSession::close_slow(clock::time_point now) {
    // The app learns now (its send() raises); the close frame may never get through to a
    // client that reads nothing, so the socket is cut after one more timeout.
    ctx_.metrics->ws_slow_consumer_closes.fetch_add(1, std::memory_order_relaxed);
    notify_closed(static_cast<int>(websocket::close_code::policy_error));
    close_with(static_cast<uint16_t>(websocket::close_code::policy_error), true);
    set_deadline(Deadline::hard_close, now + ctx_.limits.ws_send_timeout);
}

}  // namespace narwhal::server
