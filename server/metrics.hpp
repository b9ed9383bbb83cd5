// A worker's Prometheus observations that the stats counters (asgi::Stats) do not hold:
// requests by method and status class, request and queue-wait duration histograms, body
// and WebSocket bytes and messages, loop lag per interpreter. One block of relaxed atomics
// with fixed buckets, written by the I/O threads and the loop monitors and read by the
// metrics endpoint.
//
// Why a block of its own and not more fields of asgi::Stats: under --workers the block
// lives inside the worker's row of the master's shared table (worker_slots.hpp), so an
// observation goes straight to the memory the master reads - no copy on each heartbeat,
// and the numbers stay current while a loop is stuck (the heartbeat that publishes the
// stats counters would not run). A single process keeps it in its ServerContext.
//
// Rules of the shared table apply: always lock-free atomics, no pointers, fixed size,
// trivially destructible. A request's observation is a handful of relaxed fetch_adds on
// the worker's own lines: no lock, no allocation.
#pragma once

#include "config/settings.hpp"

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>

namespace narwhal::server {

// Method classes of narwhal_http_requests_total: the common methods by name, the rest as
// "other", so a client sending random methods cannot grow the label set.
enum class MethodClass : uint8_t { get, head, post, put, delete_, patch, options, other };
inline constexpr std::size_t method_classes = 8;
MethodClass method_class(std::string_view method);
std::string_view label(MethodClass m);
// 1xx..5xx as 0..4. ASGI statuses are 100..599; anything else is clamped to the nearest
// class rather than given a label of its own.
inline constexpr std::size_t status_classes = 5;
inline std::size_t status_class(int status) {
    int c = status / 100 - 1;
    return c < 0 ? 0 : c > 4 ? 4 : static_cast<std::size_t>(c);
}

// Upper bounds of the request-duration and queue-wait buckets, in seconds. From 0.5 ms
// (a request narwhal answers without the app waiting on anything takes well under a
// millisecond, and a server should see that tail move) to 10 s (beyond it a balancer or
// client has usually given up); about 2.5x apart, the usual Prometheus spacing.
inline constexpr double request_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                            0.1,    0.25,  0.5,    1.0,   2.5,  5.0,   10.0};
// Event-loop lag (how late the heartbeat ran): from 1 ms (a loop turning normally) past the
// watchdog's 100 ms report threshold to 5 s (the health-check timeout's default).
inline constexpr double lag_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                        0.1,   0.25,   0.5,   1.0,  2.5,   5.0};

// A histogram with fixed bounds: per-bucket (not cumulative) counts plus the +Inf bucket
// and the sum in nanoseconds. The text writer makes the buckets cumulative.
template <std::size_t N> struct AtomicHistogram {
    static constexpr std::size_t bounds = N;
    std::atomic<uint64_t> counts[N + 1]{};
    std::atomic<uint64_t> sum_ns{0};

    // `bounds_ns`: the upper bounds in nanoseconds, ascending.
    void observe(int64_t ns, const std::array<int64_t, N>& bounds_ns) {
        if (ns < 0)
            ns = 0;
        std::size_t i = 0;
        while (i < N && ns > bounds_ns[i])
            ++i;
        counts[i].fetch_add(1, std::memory_order_relaxed);
        sum_ns.fetch_add(static_cast<uint64_t>(ns), std::memory_order_relaxed);
    }
};

using RequestHistogram = AtomicHistogram<std::size(request_bounds)>;
using LagHistogram = AtomicHistogram<std::size(lag_bounds)>;

struct Metrics {
    static constexpr std::size_t max_loops = config::Settings::max_interpreters;

    // Once per request that got a response (HttpSession::request_done).
    void observe_request(MethodClass method, int status, int64_t duration_ns, int64_t queue_wait_ns,
                         uint64_t bytes_in, uint64_t bytes_out);
    // Once per heartbeat of loop `loop`: how late it ran.
    void observe_lag(std::size_t loop, int64_t lag_ns);

    // Zeroes every field (a new worker in a reused row). Not concurrent with writers.
    void reset();
    // `into` += this block's counters and histograms; the gauges only with `gauges` (a
    // reaped worker's open sockets ended with it). Relaxed reads: a scrape is a sample.
    void add_to(Metrics& into, bool gauges) const;

    std::atomic<uint64_t> requests[method_classes][status_classes]{};
    RequestHistogram duration;
    RequestHistogram queue_wait;
    std::atomic<uint64_t> request_body_bytes{0};
    std::atomic<uint64_t> response_body_bytes{0};

    std::atomic<int64_t> ws_open{0};  // gauge
    std::atomic<uint64_t> ws_sessions{0};
    std::atomic<uint64_t> ws_messages_in{0};
    std::atomic<uint64_t> ws_messages_out{0};
    std::atomic<uint64_t> ws_bytes_in{0};
    std::atomic<uint64_t> ws_bytes_out{0};
    std::atomic<uint64_t> ws_slow_consumer_closes{0};

    // narwhal.pubsub (server/pubsub_hub.hpp and its relays)
    std::atomic<uint64_t> pubsub_published{0};       // made by this process's apps
    std::atomic<uint64_t> pubsub_received{0};        // from other workers or servers
    std::atomic<uint64_t> pubsub_delivered{0};       // handed to a subscribed socket
    std::atomic<uint64_t> pubsub_dropped{0};         // skipped for a full subscriber (drop)
    std::atomic<int64_t> pubsub_subscriptions{0};    // gauge: (socket, topic) pairs
    std::atomic<uint64_t> pubsub_bus_lost{0};        // not handed to a sibling worker
    std::atomic<int64_t> pubsub_redis_connected{0};  // gauge: 1 while the link is up
    std::atomic<uint64_t> pubsub_redis_reconnects{0};
    std::atomic<uint64_t> pubsub_redis_lost{0};  // publications not sent to Redis

    LagHistogram loop_lag[max_loops];
};
static_assert(std::is_trivially_destructible_v<Metrics>);
static_assert(std::atomic<uint64_t>::is_always_lock_free);

}  // namespace narwhal::server
