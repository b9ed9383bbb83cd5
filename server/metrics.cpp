#include "server/metrics.hpp"

#include <array>
#include <cmath>

namespace narwhal::server {
namespace {

constexpr auto relaxed = std::memory_order_relaxed;

template <std::size_t N> constexpr std::array<int64_t, N> to_ns(const double (&seconds)[N]) {
    std::array<int64_t, N> out{};
    for (std::size_t i = 0; i < N; ++i)
        out[i] = static_cast<int64_t>(seconds[i] * 1e9 + 0.5);
    return out;
}
constexpr auto request_bounds_ns = to_ns(request_bounds);
constexpr auto lag_bounds_ns = to_ns(lag_bounds);

template <std::size_t N>
void add_histogram(const AtomicHistogram<N>& from, AtomicHistogram<N>& into) {
    for (std::size_t i = 0; i <= N; ++i)
        into.counts[i].fetch_add(from.counts[i].load(relaxed), relaxed);
    into.sum_ns.fetch_add(from.sum_ns.load(relaxed), relaxed);
}

template <std::size_t N> void zero(AtomicHistogram<N>& h) {
    for (auto& c : h.counts)
        c.store(0, relaxed);
    h.sum_ns.store(0, relaxed);
}

}  // namespace

MethodClass method_class(std::string_view m) {
    // By length first: one compare of the length rules out all but one or two names.
    switch (m.size()) {
    case 3:
        if (m == "GET")
            return MethodClass::get;
        if (m == "PUT")
            return MethodClass::put;
        break;
    case 4:
        if (m == "HEAD")
            return MethodClass::head;
        if (m == "POST")
            return MethodClass::post;
        break;
    case 5:
        if (m == "PATCH")
            return MethodClass::patch;
        break;
    case 6:
        if (m == "DELETE")
            return MethodClass::delete_;
        break;
    case 7:
        if (m == "OPTIONS")
            return MethodClass::options;
        break;
    default: break;
    }
    return MethodClass::other;
}

std::string_view label(MethodClass m) {
    switch (m) {
    case MethodClass::get: return "GET";
    case MethodClass::head: return "HEAD";
    case MethodClass::post: return "POST";
    case MethodClass::put: return "PUT";
    case MethodClass::delete_: return "DELETE";
    case MethodClass::patch: return "PATCH";
    case MethodClass::options: return "OPTIONS";
    case MethodClass::other: break;
    }
    return "other";
}

void Metrics::observe_request(MethodClass method, int status, int64_t duration_ns,
                              int64_t queue_wait_ns, uint64_t bytes_in, uint64_t bytes_out) {
    requests[static_cast<std::size_t>(method)][status_class(status)].fetch_add(1, relaxed);
    duration.observe(duration_ns, request_bounds_ns);
    queue_wait.observe(queue_wait_ns, request_bounds_ns);
    if (bytes_in)
        request_body_bytes.fetch_add(bytes_in, relaxed);
    if (bytes_out)
        response_body_bytes.fetch_add(bytes_out, relaxed);
}

void Metrics::observe_lag(std::size_t loop, int64_t lag_ns) {
    if (loop < max_loops)
        loop_lag[loop].observe(lag_ns, lag_bounds_ns);
}

void Metrics::reset() {
    for (auto& row : requests)
        for (auto& c : row)
            c.store(0, relaxed);
    zero(duration);
    zero(queue_wait);
    for (auto* c : {&request_body_bytes, &response_body_bytes, &ws_sessions, &ws_messages_in,
                    &ws_messages_out, &ws_bytes_in, &ws_bytes_out, &ws_slow_consumer_closes,
                    &pubsub_published, &pubsub_received, &pubsub_delivered, &pubsub_dropped,
                    &pubsub_bus_lost, &pubsub_redis_reconnects, &pubsub_redis_lost})
        c->store(0, relaxed);
    for (auto* g : {&ws_open, &pubsub_subscriptions, &pubsub_redis_connected})
        g->store(0, relaxed);
    for (auto& h : loop_lag)
        zero(h);
}

void Metrics::add_to(Metrics& into, bool gauges) const {
    for (std::size_t m = 0; m < method_classes; ++m)
        for (std::size_t s = 0; s < status_classes; ++s)
            into.requests[m][s].fetch_add(requests[m][s].load(relaxed), relaxed);
    add_histogram(duration, into.duration);
    add_histogram(queue_wait, into.queue_wait);
    auto add = [](const std::atomic<uint64_t>& from, std::atomic<uint64_t>& to) {
        to.fetch_add(from.load(relaxed), relaxed);
    };
    add(request_body_bytes, into.request_body_bytes);
    add(response_body_bytes, into.response_body_bytes);
    add(ws_sessions, into.ws_sessions);
    add(ws_messages_in, into.ws_messages_in);
    add(ws_messages_out, into.ws_messages_out);
    add(ws_bytes_in, into.ws_bytes_in);
    add(ws_bytes_out, into.ws_bytes_out);
    add(ws_slow_consumer_closes, into.ws_slow_consumer_closes);
    add(pubsub_published, into.pubsub_published);
    add(pubsub_received, into.pubsub_received);
    add(pubsub_delivered, into.pubsub_delivered);
    add(pubsub_dropped, into.pubsub_dropped);
    add(pubsub_bus_lost, into.pubsub_bus_lost);
    add(pubsub_redis_reconnects, into.pubsub_redis_reconnects);
    add(pubsub_redis_lost, into.pubsub_redis_lost);
    if (gauges) {
        into.ws_open.fetch_add(ws_open.load(relaxed), relaxed);
        into.pubsub_subscriptions.fetch_add(pubsub_subscriptions.load(relaxed), relaxed);
        into.pubsub_redis_connected.fetch_add(pubsub_redis_connected.load(relaxed), relaxed);
    }
    for (std::size_t i = 0; i < max_loops; ++i)
        add_histogram(loop_lag[i], into.loop_lag[i]);
}

}  // namespace narwhal::server
