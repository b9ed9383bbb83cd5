// The network half of a worker: I/O threads, listeners and signal handling. It knows
// the interpreters only through their inboxes; each has an admission of its own
// (--limit-concurrency and --limit-queue are per interpreter) and each new connection is
// given to one of them (server/interpreter_picker.hpp).
#pragma once

#include "asgi/inbox.hpp"
#include "config/settings.hpp"
#include "server/listener.hpp"
#include "server/pubsub_hub.hpp"
#include "server/server_context.hpp"

#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <functional>
#include <memory>
#include <span>
#include <vector>

namespace narwhal::server {

class IoThread;

class FrontEnd {
public:
    // One inbox per interpreter (at least one), in interpreter order. `tls`: serve HTTPS
    // with it (loaded before, so a bad file stops start-up early); nullptr: plain HTTP.
    FrontEnd(const config::Settings& settings, std::span<asgi::Inbox* const> inboxes,
             std::shared_ptr<TlsStore> tls = nullptr);
    ~FrontEnd();

    // Binds the listening socket. Throws std::system_error naming the address.
    void bind();
    const std::string& description() const;

    // Starts the I/O threads and the accept loop. `on_stop_signal(n)` runs on an I/O
    // thread at the first (n = 1) and the second (n = 2) SIGINT/SIGTERM; a third one
    // exits at once.
    void start(std::function<void(int)> on_stop_signal);

    // Stop accepting, close idle connections, let busy ones finish with
    // "connection: close". Any thread.
    void begin_shutdown();
    // --timeout-shutdown-delay: draining from now (ready probes answer 503, responses
    // close their connections) while the listener stays open; `then` runs on the first
    // I/O thread once `delay` has passed. Any thread.
    void delay_shutdown(std::chrono::milliseconds delay, std::function<void()> then);
    // After begin_shutdown, on the first I/O thread: runs `then` once every connection
    // accepted before the listener closed has sent its first request head or closed.
    void after_first_requests(std::function<void()> then);
    // Stops the I/O threads and joins them. Pending connections are dropped.
    void stop();
    // With --io-threads 0, the context the interpreter's thread runs; else nullptr.
    IoThread* inline_io();

    ServerContext& context() { return ctx_; }
    // The narwhal.pubsub fan-out, and the I/O thread its relays (the worker bus, Redis)
    // run on: the first one, which also runs the listener and the signals.
    PubSubHub& pubsub() { return *pubsub_; }
    IoThread& relay_thread() { return *threads_[0]; }
    // Logs "narwhal stats: {json}" (also on SIGUSR1): the counters the metrics endpoint
    // will export (server/worker_health.hpp's stats_fields), then with several
    // interpreters each one's requests in flight and queued.
    void log_stats();
    asgi::Admission& admission(std::size_t interpreter) { return *admissions_[interpreter]; }
    // Over all interpreters.
    std::size_t in_flight() const;
    std::size_t queued() const;

private:
    const config::Settings& settings_;
    ServerContext ctx_;
    std::vector<std::unique_ptr<asgi::Admission>> admissions_;
    std::vector<std::unique_ptr<IoThread>> threads_;
    std::unique_ptr<PubSubHub> pubsub_;  // after threads_: it posts to them
    std::unique_ptr<Listener> listener_;
    std::unique_ptr<boost::asio::signal_set> signals_;
    std::unique_ptr<boost::asio::signal_set> stats_signal_;
    std::unique_ptr<boost::asio::signal_set> reload_signal_;
    void wait_reload_signal();
    std::unique_ptr<boost::asio::steady_timer> first_requests_timer_;
    std::unique_ptr<boost::asio::steady_timer> shutdown_delay_timer_;
    void wait_stats_signal();
    void wait_stop_signal();
    void on_stop_signal();
    void on_request_limit(uint64_t limit);
    std::function<void(int)> on_stop_signal_;
    int stop_signals_ = 0;
    bool stopped_ = false;
};

ServerContext make_context(const config::Settings& settings);

}  // namespace narwhal::server
