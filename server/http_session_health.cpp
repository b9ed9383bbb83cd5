// HttpSession, the health paths (server/health.hpp): a probe is answered on the
// connection's thread from the parsed head, through the same response encoder as an
// app's response, so keep-alive and HEAD behave as for any request. It takes no admission
// slot and never reaches the interpreter: it answers while every loop is stuck and while
// the admission queue is full. Not an access line, not a request in the metrics: a
// balancer probing every few hundred milliseconds would drown both.
#include "server/http_session.hpp"

#include "asgi/loop_monitor.hpp"

namespace narwhal::server {

bool HttpSession::answer_health() {
    auto probe = ctx_.health->match(request_.head->target_view());
    if (probe == HealthPaths::Probe::none)
        return false;
    if (!body_.done()) {
        // Probes have no body; reading one here would be the app's business.
        reply_error(400, "health probe with a request body");
        return true;
    }
    std::string_view method = request_.head->method_view();
    HealthPaths::Answer answer;
    asgi::HeaderList headers;
    if (method == "GET" || method == "HEAD") {
        answer = ctx_.health->answer(probe, ctx_, asgi::LoopMonitor::now_ns());
        headers = {{"content-type", "application/json"}, {"cache-control", "no-store"}};
    } else {
        answer = {405, "Method Not Allowed\n"};
        headers = {{"content-type", "text/plain; charset=utf-8"}, {"allow", "GET, HEAD"}};
    }
    phase_ = Phase::request;
    request_.native = true;
    request_.body_done = true;
    response_.start(answer.status, std::move(headers), asgi::HeaderFacts{});
    std::string& out = output_.tail();
    response_.append_head(out,
                          {.version = request_.version,
                           .head_request = request_.head_request,
                           .keep_alive = request_.keep_alive,
                           .body_done = true,
                           .draining = ctx_.draining.load(std::memory_order_relaxed)},
                          answer.body.size(), false, ctx_.defaults);
    response_.append_body(out, std::move(answer.body), false);
    do_write();
    return true;
}

}  // namespace narwhal::server
