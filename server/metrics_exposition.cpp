#include "server/metrics_exposition.hpp"

#include "server/metrics_text.hpp"

#include <fmt/format.h>

#include <chrono>
#include <string>

#ifndef NARWHAL_VERSION
#define NARWHAL_VERSION "unknown"
#endif

namespace narwhal::server {
namespace {

constexpr auto relaxed = std::memory_order_relaxed;
constexpr std::string_view status_labels[status_classes] = {"1xx", "2xx", "3xx", "4xx", "5xx"};

template <std::size_t N>
void put_histogram(MetricsText& out, std::string_view name, MetricsText::Labels labels,
                   const double (&bounds)[N], const AtomicHistogram<N>& h) {
    uint64_t counts[N + 1];
    for (std::size_t i = 0; i <= N; ++i)
        counts[i] = h.counts[i].load(relaxed);
    out.histogram(name, labels, bounds, counts, static_cast<double>(h.sum_ns.load(relaxed)) / 1e9);
}

void counter(MetricsText& out, std::string_view name, std::string_view help, uint64_t value) {
    out.family(name, "counter", help);
    out.sample(name, {}, value);
}

void gauge(MetricsText& out, std::string_view name, std::string_view help, int64_t value) {
    out.family(name, "gauge", help);
    out.sample(name, {}, value);
}

}  // namespace

double process_start_time() {
    static const double start =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    return start;
}

std::string render_metrics(const MetricsSample& s) {
    MetricsText out;
    const Metrics& m = *s.metrics;
    const WorkerCounters& c = s.counters;

    out.family("narwhal_build_info", "gauge", "narwhal's version; always 1.");
    out.sample("narwhal_build_info", {{"version", NARWHAL_VERSION}}, int64_t{1});
    out.family("narwhal_process_start_time_seconds", "gauge",
               "When the server (under --workers, its master) started, in Unix seconds.");
    out.sample("narwhal_process_start_time_seconds", {}, s.start_time_seconds);

    // --- HTTP
    out.family("narwhal_http_requests_total", "counter",
               "HTTP requests answered (by the app or the server), by method and status class.");
    for (std::size_t mc = 0; mc < method_classes; ++mc)
        for (std::size_t sc = 0; sc < status_classes; ++sc)
            if (uint64_t n = m.requests[mc][sc].load(relaxed))
                out.sample("narwhal_http_requests_total",
                           {{"method", label(static_cast<MethodClass>(mc))},
                            {"status", status_labels[sc]}},
                           n);
    out.family("narwhal_http_request_duration_seconds", "histogram",
               "From a request's complete head to the end of its response.");
    put_histogram(out, "narwhal_http_request_duration_seconds", {}, request_bounds, m.duration);
    out.family("narwhal_http_queue_wait_seconds", "histogram",
               "Time requests waited for a --limit-concurrency slot (0 for most).");
    put_histogram(out, "narwhal_http_queue_wait_seconds", {}, request_bounds, m.queue_wait);
    counter(out, "narwhal_http_dispatched_requests_total",
            "HTTP requests handed to the application.", c.requests);
    gauge(out, "narwhal_http_requests_in_flight", "HTTP requests the application has now.",
          c.in_flight);
    gauge(out, "narwhal_http_requests_queued",
          "HTTP requests waiting for a --limit-concurrency slot now.", c.queued);
    counter(out, "narwhal_http_shed_total",
            "HTTP requests refused with 503 (no slot, queue full, interpreter inbox full, "
            "shutting down).",
            c.shed);
    counter(out, "narwhal_http_queue_timeouts_total",
            "Of the shed requests, those that waited --timeout-queue for a slot.",
            c.queue_timeouts);
    counter(out, "narwhal_http_request_body_bytes_total",
            "Request body bytes handed to the application.", m.request_body_bytes.load(relaxed));
    counter(out, "narwhal_http_response_body_bytes_total",
            "Response body bytes sent (the application's, or an error answer's).",
            m.response_body_bytes.load(relaxed));
    gauge(out, "narwhal_connections_open", "Open client connections (HTTP and WebSocket).",
          c.connections);
    counter(out, "narwhal_tls_handshake_failures_total",
            "TLS connections closed before a request (failed or abandoned handshakes).",
            c.tls_handshake_failures);
    counter(out, "narwhal_proxy_protocol_errors_total",
            "Connections closed for a missing, malformed or stalled PROXY protocol header, or "
            "sent one from a peer outside --forwarded-allow-ips.",
            c.proxy_protocol_errors);

    // --- WebSocket
    gauge(out, "narwhal_websocket_sessions_open", "Open WebSocket sessions.",
          m.ws_open.load(relaxed));
    counter(out, "narwhal_websocket_sessions_total", "WebSocket sessions accepted.",
            m.ws_sessions.load(relaxed));
    out.family("narwhal_websocket_messages_total", "counter",
               "WebSocket messages, by direction (in: from clients).");
    out.sample("narwhal_websocket_messages_total", {{"direction", "in"}},
               m.ws_messages_in.load(relaxed));
    out.sample("narwhal_websocket_messages_total", {{"direction", "out"}},
               m.ws_messages_out.load(relaxed));
    out.family("narwhal_websocket_message_bytes_total", "counter",
               "WebSocket message payload bytes, by direction.");
    out.sample("narwhal_websocket_message_bytes_total", {{"direction", "in"}},
               m.ws_bytes_in.load(relaxed));
    out.sample("narwhal_websocket_message_bytes_total", {{"direction", "out"}},
               m.ws_bytes_out.load(relaxed));
    counter(out, "narwhal_websocket_slow_consumer_closes_total",
            "WebSockets closed with 1008 for not keeping up (--ws-slow-consumer close).",
            m.ws_slow_consumer_closes.load(relaxed));

    // --- publish/subscribe
    counter(out, "narwhal_pubsub_published_total",
            "narwhal.pubsub publications made by this server's apps.",
            m.pubsub_published.load(relaxed));
    counter(out, "narwhal_pubsub_received_total",
            "Publications received from other workers and servers (the worker bus, Redis).",
            m.pubsub_received.load(relaxed));
    counter(out, "narwhal_pubsub_delivered_total",
            "Publications handed to a subscribed WebSocket (one per subscriber).",
            m.pubsub_delivered.load(relaxed));
    counter(out, "narwhal_pubsub_dropped_total",
            "Publications skipped for a subscriber whose queue was full (--ws-slow-consumer drop).",
            m.pubsub_dropped.load(relaxed));
    gauge(out, "narwhal_pubsub_subscriptions", "Subscriptions: (socket, topic) pairs.",
          m.pubsub_subscriptions.load(relaxed));
    counter(out, "narwhal_pubsub_bus_lost_total",
            "Publications a sibling worker could not take (not running, or its queue full).",
            m.pubsub_bus_lost.load(relaxed));
    gauge(out, "narwhal_pubsub_redis_connected",
          "Processes whose --pubsub-redis link is up (one per worker).",
          m.pubsub_redis_connected.load(relaxed));
    counter(out, "narwhal_pubsub_redis_reconnects_total",
            "Times a --pubsub-redis link was re-established after it was lost.",
            m.pubsub_redis_reconnects.load(relaxed));
    counter(out, "narwhal_pubsub_redis_lost_total",
            "Publications not sent to Redis because the link was down or its queue full.",
            m.pubsub_redis_lost.load(relaxed));

    // --- event loops and tasks
    out.family("narwhal_event_loop_lag_seconds", "histogram",
               "How late each event loop's heartbeat ran, by interpreter.");
    for (std::size_t i = 0; i < s.interpreters && i < Metrics::max_loops; ++i) {
        std::string interp = std::to_string(i);
        put_histogram(out, "narwhal_event_loop_lag_seconds", {{"interpreter", interp}}, lag_bounds,
                      m.loop_lag[i]);
    }
    counter(out, "narwhal_event_loop_stalls_total",
            "Event-loop stalls past --watchdog-threshold reported by the watchdog.", c.loop_stalls);
    out.family("narwhal_event_loop_lag_max_seconds", "gauge",
               "The worst heartbeat delay seen by any loop since start.");
    out.sample("narwhal_event_loop_lag_max_seconds", {}, c.loop_lag_max_us / 1e6);
    counter(out, "narwhal_tasks_cancelled_total", "Request tasks cancelled by a cancel scope.",
            c.cancelled);
    counter(out, "narwhal_tasks_abandoned_total",
            "Request tasks that ignored repeated cancellation and were abandoned.", c.abandoned);
    counter(out, "narwhal_tasks_orphaned_total",
            "Tasks a request spawned still pending --timeout-orphan-tasks after it ended.",
            c.orphan_tasks);
    counter(out, "narwhal_task_exceptions_unretrieved_total",
            "Task and future exceptions nobody retrieved (asyncio's \"never retrieved\").",
            c.unretrieved_exceptions);

    // --- workers (master)
    if (s.master) {
        out.family("narwhal_worker_restarts_total", "counter",
                   "Workers replaced by the master, by cause.");
        const std::pair<std::string_view, uint64_t> causes[] = {
            {"exit", s.restarts.exit},
            {"healthcheck", s.restarts.healthcheck},
            {"max_requests", s.restarts.max_requests},
            {"reload", s.restarts.reload},
            {"startup_timeout", s.restarts.startup_timeout},
        };
        for (const auto& [cause, n] : causes)
            out.sample("narwhal_worker_restarts_total", {{"cause", cause}}, n);
        out.family("narwhal_workers", "gauge", "Worker processes, by state.");
        for (WorkerState state :
             {WorkerState::starting, WorkerState::ready, WorkerState::draining}) {
            int64_t n = 0;
            for (const auto& w : s.workers)
                n += w.state == state;
            out.sample("narwhal_workers", {{"state", to_string(state)}}, n);
        }
        out.family("narwhal_worker_requests_in_flight", "gauge",
                   "HTTP requests each worker's application has now.");
        for (const auto& w : s.workers) {
            std::string index = std::to_string(w.index), pid = std::to_string(w.pid);
            out.sample("narwhal_worker_requests_in_flight", {{"worker", index}, {"pid", pid}},
                       w.counters.in_flight);
        }
        out.family("narwhal_worker_connections_open", "gauge",
                   "Open client connections of each worker.");
        for (const auto& w : s.workers) {
            std::string index = std::to_string(w.index), pid = std::to_string(w.pid);
            out.sample("narwhal_worker_connections_open", {{"worker", index}, {"pid", pid}},
                       w.counters.connections);
        }
    }
    return out.take();
}

}  // namespace narwhal::server
