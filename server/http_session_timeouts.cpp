// HttpSession, bounding time: what a connection may wait for (keep-alive, the rest of a
// head, an admission slot, body bytes, the linger after closing) and the request deadline,
// on one DeadlineTimer (deadline_timer.hpp), and what happens when each runs out.
#include "server/http_session.hpp"

#include "asgi/log.hpp"

namespace narwhal::server {

void HttpSession::set_wait(Wait w, clock::duration d) {
    wait_ = w;
    if (timer_.set(Deadline::wait, clock::now() + d))
        start_timer();
}

void HttpSession::clear_wait() {
    wait_ = Wait::none;
    timer_.clear(Deadline::wait);
}

void HttpSession::start_timer() {
    timer_.start([self = shared_from_this()](error_code ec) { self->on_timer(ec); });
}

void HttpSession::on_timer(error_code ec) {
    if (!timer_.fired(ec) || phase_ == Phase::closed)
        return;
    timer_.expire(clock::now(), [this](Deadline d) {
        if (d == Deadline::wait)
            on_wait_expired(std::exchange(wait_, Wait::none));
        else
            on_request_deadline();
    });
    if (timer_.pending())
        start_timer();
}

void HttpSession::on_wait_expired(Wait w) {
    switch (w) {
    case Wait::none: break;
    case Wait::proxy_header:
        if (phase_ == Phase::idle)
            proxy_header_failed("not complete within --timeout-header");
        break;
    case Wait::handshake:
        if (phase_ == Phase::idle)
            handshake_failed("not complete within --timeout-header");
        break;
    case Wait::keep_alive:
        if (phase_ == Phase::idle)
            close_now();  // idle keep-alive connection
        break;
    case Wait::header:
        if (phase_ == Phase::idle) {
            access_method_.clear();  // no head was read: the request is not known
            access_target_.clear();
            access_version_ = 11;
            access_user_agent_.clear();
            reply_error(408, "request head not complete within --timeout-header");
        }
        break;
    case Wait::queue:
        if (phase_ == Phase::admission && lane_.admission->cancel(this)) {
            ctx_.stats.queue_timeouts.fetch_add(1, std::memory_order_relaxed);
            shed("no slot within --timeout-queue");
        }
        break;
    case Wait::body:
        if (phase_ == Phase::request && !request_.body_done) {
            // The client stopped sending its body: the app sees it gone.
            notify_disconnect();
            if (response_.head_written())
                return close_now();
            end_request();
            reply_error(408, "request body stalled longer than --timeout-body");
        }
        break;
    case Wait::send:
        if (phase_ == Phase::request && request_.file) {
            log::debug("file send stalled longer than --timeout-send");
            notify_disconnect();
            close_now();
        }
        break;
    case Wait::linger: close_now(); break;
    }
}

void HttpSession::on_request_deadline() {
    if (phase_ != Phase::request || response_.done())
        return;
    push_event(asgi::Event::Kind::deadline);
    if (response_.head_written())
        return close_now();  // part of the response is out: abort
    // Nothing sent yet: the client gets 504, and the app's late answer finds the request
    // gone (its commands are stale).
    end_request();
    reply_error(504, "request deadline (--timeout-request) passed");
}

}  // namespace narwhal::server
