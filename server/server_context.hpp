// What every connection of a worker shares: limits and response defaults derived once
// from the settings, the interpreters' inboxes, and the worker-wide draining flag.
#pragma once

#include "asgi/admission.hpp"
#include "asgi/inbox.hpp"
#include "asgi/request_id.hpp"
#include "asgi/stats.hpp"
#include "server/health.hpp"
#include "server/http/head_scanner.hpp"
#include "server/http/response_head.hpp"
#include "server/interpreter_picker.hpp"
#include "server/metrics.hpp"
#include "server/proxy_protocol.hpp"
#include "server/tls_context.hpp"
#include "server/trusted_proxies.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

namespace narwhal::server {

class PubSubHub;

struct SessionLimits {
    http::HeadLimits head;
    uint64_t body_limit = 0;
    std::size_t read_window = 0;
    std::size_t send_high_water = 0;
    std::size_t send_low_water = 0;
    std::chrono::milliseconds keep_alive{5000};
    std::chrono::milliseconds header{10000};
    std::chrono::milliseconds body{30000};
    std::chrono::milliseconds send{30000};  // a file send's stall (http.response.pathsend)
    std::chrono::milliseconds queue{1000};
    std::chrono::milliseconds request{0};  // 0: no deadline
    int64_t max_connections = 0;
    // WebSocket
    bool websocket = true;  // false (--ws none): upgrade requests are plain HTTP requests
    std::size_t ws_max_size = 16 * 1024 * 1024;
    std::size_t ws_max_queue = 32;
    std::chrono::milliseconds ws_ping_interval{20000};
    std::chrono::milliseconds ws_ping_timeout{20000};
    bool ws_deflate = true;
    bool ws_close_slow_consumers = false;
    // Publications queued per subscriber (--pubsub-max-queue); over it, drop skips them,
    // wait and close close the socket with 1008 (publications cannot wait).
    std::size_t pubsub_max_queue = 1024;
    bool pubsub_drop = false;
    std::chrono::milliseconds ws_send_timeout{10000};
    std::chrono::milliseconds ws_drain{5000};
};

// Behind load balancers: which peers are proxies, and what is believed from them.
struct ProxyPolicy {
    bool headers = false;    // --proxy-headers: X-Forwarded-* and Forwarded of trusted peers
    TrustedProxies trusted;  // --forwarded-allow-ips
    std::optional<proxy_protocol::Version> protocol;  // --proxy-protocol; nullopt: off
};

// One interpreter as a connection sees it: where its events go, and the admission that
// bounds its requests in flight.
struct InterpreterLane {
    asgi::Inbox* inbox = nullptr;
    asgi::Admission* admission = nullptr;
    int index = 0;  // its place among the worker's interpreters, as reports number them
};

struct ServerContext {
    SessionLimits limits;
    http::ResponseDefaults defaults;
    ProxyPolicy proxy;
    // One per interpreter of the worker (at least one), set before any connection exists.
    std::vector<InterpreterLane> lanes;
    InterpreterPicker picker;
    asgi::Stats stats;
    std::atomic<bool> draining{false};
    // TLS: the configuration new connections take; nullptr serves plain HTTP.
    std::shared_ptr<TlsStore> tls;
    // Connections accepted that have not sent a complete first request head yet. A drain
    // waits for them (bounded by their keep-alive wait): one accepted just before the
    // listener closed is a client sending its request now, not an idle one to close.
    std::atomic<int64_t> awaiting_first_request{0};
    std::atomic<uint64_t> next_request_id{0};
    // Made in the worker process, after any fork: each process draws its own prefix.
    asgi::RequestIdGenerator request_ids;
    // This worker's process id, as access lines and watchdog reports name the worker
    // (getpid is a system call; the context is made in the worker, after any fork).
    const int pid = static_cast<int>(::getpid());
    // Set by the front end: resumes a listener paused at --limit-connections.
    std::function<void()> on_connection_closed;
    // --limit-max-requests of a single process (under --workers the master recycles the
    // worker instead): the request count that ends the process, 0 for none. Set by the
    // front end with `on_request_limit`, before any connection exists.
    uint64_t request_limit = 0;
    std::function<void()> on_request_limit;

    // --- health paths and metrics ------------------------------------------------
    // --health-live-path / --health-ready-path; nullptr: none configured.
    std::unique_ptr<HealthPaths> health;
    // Where this worker's observations go: its own block, or under --workers its row of
    // the master's table (set before any connection exists).
    Metrics own_metrics;
    Metrics* metrics = &own_metrics;
    // The narwhal.pubsub fan-out (owned by the front end, made with its I/O threads).
    PubSubHub* pubsub = nullptr;

    // I/O threads: a request was handed to the interpreter. fetch_add returns the count
    // before this one, so exactly one thread sees the limit reached, however many count
    // at once; nothing but a compare is added to the hot path.
    void count_request() {
        uint64_t before = stats.requests.fetch_add(1, std::memory_order_relaxed);
        if (before + 1 == request_limit) [[unlikely]]
            on_request_limit();
    }

    // I/O threads, once per new connection: the interpreter that serves all of it. With
    // one interpreter, nothing but a size check.
    InterpreterLane assign_lane() {
        if (lanes.size() == 1)
            return lanes[0];
        std::size_t loads[InterpreterPicker::max_interpreters];
        std::size_t n = std::min(lanes.size(), InterpreterPicker::max_interpreters);
        for (std::size_t i = 0; i < n; ++i)
            loads[i] = lanes[i].admission->in_flight() + lanes[i].admission->queued();
        return lanes[picker.pick(std::span<const std::size_t>(loads, n))];
    }

    // Any thread.
    void connection_closed() {
        stats.connections.fetch_sub(1, std::memory_order_relaxed);
        if (on_connection_closed)
            on_connection_closed();
    }
};

}  // namespace narwhal::server
