#include "server/front_end.hpp"

#include "asgi/log.hpp"
#include "server/io_thread.hpp"
#include "server/systemd.hpp"
#include "server/worker_health.hpp"

#include <boost/asio/post.hpp>
#include <fmt/format.h>

#include <cctype>
#include <csignal>
#include <cstdlib>
#include <random>
#include <sys/resource.h>
#include <unistd.h>

namespace narwhal::server {

namespace net = boost::asio;

FrontEnd::FrontEnd(const config::Settings& settings, std::span<asgi::Inbox* const> inboxes,
                   std::shared_ptr<TlsStore> tls)
    : settings_(settings) {
    ctx_.tls = std::move(tls);
    auto& s = settings;
    ctx_.limits.head = http::HeadLimits{s.limit_request_line, s.limit_request_head,
                                        s.limit_request_field_size, s.limit_request_fields};
    ctx_.limits.body_limit = s.limit_request_body;
    ctx_.limits.read_window = s.read_window;
    ctx_.limits.send_high_water = s.send_high_water;
    ctx_.limits.send_low_water = s.send_low_water;
    auto ms = config::milliseconds_of;
    ctx_.limits.keep_alive = ms(s.timeout_keep_alive);
    ctx_.limits.header = ms(s.timeout_header);
    ctx_.limits.body = ms(s.timeout_body);
    ctx_.limits.send = ms(s.timeout_send);
    ctx_.limits.queue = ms(s.timeout_queue);
    ctx_.limits.request = ms(s.timeout_request);
    ctx_.limits.max_connections = s.limit_connections;
    ctx_.limits.websocket = s.ws != config::WsImpl::none;
    ctx_.limits.ws_max_size = s.ws_max_size;
    ctx_.limits.ws_max_queue = static_cast<std::size_t>(s.ws_max_queue);
    ctx_.limits.ws_ping_interval = ms(s.ws_ping_interval);
    ctx_.limits.ws_ping_timeout = ms(s.ws_ping_timeout);
    ctx_.limits.ws_deflate = s.ws_per_message_deflate;
    ctx_.limits.ws_close_slow_consumers =
        s.ws_slow_consumer == config::Settings::SlowConsumer::close;
    ctx_.limits.pubsub_drop = s.ws_slow_consumer == config::Settings::SlowConsumer::drop;
    ctx_.limits.pubsub_max_queue = static_cast<std::size_t>(s.pubsub_max_queue);
    ctx_.limits.ws_send_timeout = ms(s.ws_send_timeout);
    ctx_.limits.ws_drain = ms(s.timeout_ws_drain);
    for (asgi::Inbox* inbox : inboxes) {
        admissions_.push_back(
            std::make_unique<asgi::Admission>(static_cast<std::size_t>(s.limit_concurrency),
                                              static_cast<std::size_t>(s.limit_queue)));
        ctx_.lanes.push_back(
            {inbox, admissions_.back().get(), static_cast<int>(ctx_.lanes.size())});
    }
    ctx_.proxy.headers = s.proxy_headers;
    ctx_.proxy.trusted = TrustedProxies::parse(s.forwarded_allow_ips);
    switch (s.proxy_protocol) {
    case config::Settings::ProxyProtocol::off: break;
    case config::Settings::ProxyProtocol::v1:
        ctx_.proxy.protocol = proxy_protocol::Version::v1;
        break;
    case config::Settings::ProxyProtocol::v2:
        ctx_.proxy.protocol = proxy_protocol::Version::v2;
        break;
    case config::Settings::ProxyProtocol::auto_:
        ctx_.proxy.protocol = proxy_protocol::Version::any;
        break;
    }
    if (!s.health_live_path.empty() || !s.health_ready_path.empty())
        ctx_.health = std::make_unique<HealthPaths>(s.health_live_path, s.health_ready_path,
                                                    s.timeout_worker_healthcheck);
    ctx_.defaults.server_header = s.server_header;
    ctx_.defaults.date_header = s.date_header;
    ctx_.defaults.extra = s.headers;
    for (char c : s.request_id_header)
        ctx_.defaults.request_id_header +=
            static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    // Under --workers the master counts a worker's requests and replaces it (new worker
    // first), so only a single process ends itself at the limit, as uvicorn's does.
    if (s.workers == 0 && s.limit_max_requests > 0) {
        std::mt19937_64 random(std::random_device{}());
        uint64_t limit =
            draw_request_limit(s.limit_max_requests, s.limit_max_requests_jitter, random);
        ctx_.request_limit = limit;
        ctx_.on_request_limit = [this, limit] {
            threads_[0]->post([this, limit] { on_request_limit(limit); });
        };
    }
    // 0: one context, run by the interpreter's thread (settings resolved "auto" already).
    if (s.io_threads == 0)
        threads_.push_back(std::make_unique<IoThread>(IoThread::Mode::inline_));
    for (int i = 0; i < s.io_threads; ++i)
        threads_.push_back(std::make_unique<IoThread>());
    std::vector<IoThread*> io;
    for (auto& t : threads_)
        io.push_back(t.get());
    pubsub_ = std::make_unique<PubSubHub>(ctx_, std::move(io));
    ctx_.pubsub = pubsub_.get();
}

IoThread* FrontEnd::inline_io() { return threads_[0]->is_inline() ? threads_[0].get() : nullptr; }

FrontEnd::~FrontEnd() { stop(); }

namespace {
// --limit-connections needs a descriptor per connection: raise the soft limit toward
// the hard one, and say so when the hard one is lower.
void ensure_descriptors(int64_t connections) {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = static_cast<rlim_t>(connections) + 256;  // listeners, files the app opens
    if (rl.rlim_cur >= want)
        return;
    rlimit raised = rl;
    raised.rlim_cur = rl.rlim_max == RLIM_INFINITY ? want : std::min(want, rl.rlim_max);
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0)
        rl = raised;
    if (rl.rlim_cur < want)
        log::warning("The descriptor limit ({}) is below --limit-connections ({}); accepts will "
                     "fail (and back off) before that limit is reached.",
                     static_cast<long long>(rl.rlim_cur), connections);
}
}  // namespace

void FrontEnd::bind() {
    ensure_descriptors(ctx_.limits.max_connections);
    ListenSpec spec{settings_.host, settings_.port, settings_.uds, settings_.fd, settings_.backlog};
    spec.tls = settings_.tls();
    // Under a master with --reuse-port, each worker binds its own socket to the port.
    spec.reuse_port = settings_.reuse_port && settings_.workers != 0;
    listener_ = std::make_unique<Listener>(threads_[0]->context(), spec);
    ctx_.on_connection_closed = [this] {
        // Cheap check first: only a paused listener needs its thread.
        if (listener_ && listener_->paused())
            threads_[0]->post([this] {
                if (listener_)
                    listener_->resume();
            });
    };
}

const std::string& FrontEnd::description() const { return listener_->description(); }

void FrontEnd::start(std::function<void(int)> on_stop_signal) {
    on_stop_signal_ = std::move(on_stop_signal);
    signals_ = std::make_unique<net::signal_set>(threads_[0]->context(), SIGINT, SIGTERM);
    wait_stop_signal();
    stats_signal_ = std::make_unique<net::signal_set>(threads_[0]->context(), SIGUSR1);
    wait_stats_signal();
    // Under systemd (ExecReload= sends SIGHUP) a single process answers SIGHUP too, with
    // RELOADING=1 then READY=1, rather than dying of it.
    if (ctx_.tls || systemd::notifying()) {
        // A renewed certificate: new handshakes use it, open connections keep theirs.
        // (Under a master, SIGHUP goes to the master, whose rolling restart starts new
        // workers with the new files; a worker sent one directly reloads in place.)
        reload_signal_ = std::make_unique<net::signal_set>(threads_[0]->context(), SIGHUP);
        wait_reload_signal();
    }
    listener_->start(ctx_, threads_);
    for (auto& t : threads_)
        t->start();
}

void FrontEnd::wait_stop_signal() {
    signals_->async_wait([this](boost::system::error_code ec, int) {
        if (ec)
            return;
        on_stop_signal();
        wait_stop_signal();
    });
}

// The first signal shuts down gracefully, the second stops waiting for requests (the
// app's lifespan shutdown still runs), a third means "now". On the first I/O thread.
void FrontEnd::on_stop_signal() {
    if (++stop_signals_ >= 3) {
        log::warning("Third stop signal: exiting without waiting.");
        std::_Exit(1);
    }
    if (stop_signals_ == 1)
        systemd::stopping("Draining: finishing the requests in flight");
    if (on_stop_signal_)
        on_stop_signal_(stop_signals_);
}

// The request that reached --limit-max-requests was handed to the app: stop as on a first
// SIGTERM (that request and the others in flight finish). A signal already did nothing
// less, so it is not counted twice.
void FrontEnd::on_request_limit(uint64_t limit) {
    log::warning("Maximum request limit of {} exceeded. Terminating process.", limit);
    if (stop_signals_ == 0)
        on_stop_signal();
}

void FrontEnd::wait_reload_signal() {
    reload_signal_->async_wait([this](boost::system::error_code ec, int) {
        if (ec)
            return;
        systemd::reloading(ctx_.tls ? "Reloading the TLS certificate" : "Reloading");
        // Reading and parsing a few PEM files: short enough for the I/O thread.
        if (ctx_.tls)
            ctx_.tls->reload();
        systemd::ready(fmt::format("Serving on {}", description()));
        wait_reload_signal();
    });
}

void FrontEnd::wait_stats_signal() {
    stats_signal_->async_wait([this](boost::system::error_code ec, int) {
        if (ec)
            return;
        log_stats();
        wait_stats_signal();
    });
}

std::size_t FrontEnd::in_flight() const {
    std::size_t n = 0;
    for (const auto& a : admissions_)
        n += a->in_flight();
    return n;
}

std::size_t FrontEnd::queued() const {
    std::size_t n = 0;
    for (const auto& a : admissions_)
        n += a->queued();
    return n;
}

void FrontEnd::log_stats() {
    auto counters =
        counters_of(ctx_.stats, static_cast<int64_t>(in_flight()), static_cast<int64_t>(queued()));
    std::string fields = "\"event\": \"stats\", " + stats_fields(counters);
    if (admissions_.size() > 1) {
        fields += ", \"interpreters\": [";
        for (std::size_t i = 0; i < admissions_.size(); ++i)
            fields += fmt::format("{}{{\"interpreter\": {}, \"in_flight\": {}, \"queued\": {}}}",
                                  i ? ", " : "", i, admissions_[i]->in_flight(),
                                  admissions_[i]->queued());
        fields += "]";
    }
    log::event(log::Level::info, fmt::format("narwhal stats: {{{}}}", fields), fields);
}

void FrontEnd::begin_shutdown() {
    ctx_.draining.store(true);
    threads_[0]->post([this] {
        if (listener_)
            listener_->close();
    });
    for (auto& t : threads_)
        t->begin_shutdown();
}

void FrontEnd::delay_shutdown(std::chrono::milliseconds delay, std::function<void()> then) {
    ctx_.draining.store(true);
    threads_[0]->post([this, delay, then = std::move(then)]() mutable {
        shutdown_delay_timer_ = std::make_unique<net::steady_timer>(threads_[0]->context());
        shutdown_delay_timer_->expires_after(delay);
        shutdown_delay_timer_->async_wait([then = std::move(then)](boost::system::error_code ec) {
            if (!ec)
                then();
        });
    });
}

void FrontEnd::after_first_requests(std::function<void()> then) {
    if (ctx_.awaiting_first_request.load(std::memory_order_relaxed) <= 0) {
        then();
        return;
    }
    // Rare (a drain racing an accept) and short (the client is sending): a poll is enough.
    if (!first_requests_timer_)
        first_requests_timer_ = std::make_unique<net::steady_timer>(threads_[0]->context());
    first_requests_timer_->expires_after(std::chrono::milliseconds(1));
    first_requests_timer_->async_wait(
        [this, then = std::move(then)](boost::system::error_code ec) mutable {
            if (!ec)
                after_first_requests(std::move(then));
        });
}

void FrontEnd::stop() {
    if (stopped_)
        return;
    stopped_ = true;
    for (auto& t : threads_)
        t->stop();
    for (auto& t : threads_)
        t->join();
}

}  // namespace narwhal::server
