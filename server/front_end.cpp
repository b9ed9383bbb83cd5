#include "server/front_end.hpp"

#include "asgi/log.hpp"
#include "server/io_thread.hpp"

#include <boost/asio/post.hpp>

#include <csignal>
#include <cstdlib>
#include <unistd.h>

namespace narwhal::server {

namespace net = boost::asio;

FrontEnd::FrontEnd(const config::Settings& settings, asgi::Inbox& inbox) : settings_(settings) {
    auto& s = settings;
    ctx_.limits.head = http::HeadLimits{s.limit_request_line, s.limit_request_head,
                                        s.limit_request_field_size, s.limit_request_fields};
    ctx_.limits.body_limit = s.limit_request_body;
    ctx_.limits.read_window = s.read_window;
    ctx_.limits.send_high_water = s.send_high_water;
    ctx_.limits.send_low_water = s.send_low_water;
    ctx_.limits.keep_alive =
        std::chrono::milliseconds(static_cast<int64_t>(s.timeout_keep_alive * 1000));
    ctx_.defaults.server_header = s.server_header;
    ctx_.defaults.date_header = s.date_header;
    ctx_.defaults.extra = s.headers;
    ctx_.inbox = &inbox;
    for (int i = 0; i < s.io_threads; ++i)
        threads_.push_back(std::make_unique<IoThread>());
}

FrontEnd::~FrontEnd() { stop(); }

void FrontEnd::bind() {
    ListenSpec spec{settings_.host, settings_.port, settings_.uds, settings_.fd, settings_.backlog};
    listener_ = std::make_unique<Listener>(threads_[0]->context(), spec);
}

const std::string& FrontEnd::description() const { return listener_->description(); }

void FrontEnd::start(std::function<void()> on_stop_signal) {
    on_stop_signal_ = std::move(on_stop_signal);
    signals_ = std::make_unique<net::signal_set>(threads_[0]->context(), SIGINT, SIGTERM);
    signals_->async_wait([this](boost::system::error_code ec, int) {
        if (ec)
            return;
        if (on_stop_signal_)
            on_stop_signal_();
        // A second signal means "now": skip the graceful wait, as uvicorn does.
        signals_->async_wait([](boost::system::error_code e, int) {
            if (!e) {
                log::warning("Second stop signal: exiting without waiting.");
                std::_Exit(1);
            }
        });
    });
    listener_->start(ctx_, threads_);
    for (auto& t : threads_)
        t->start();
}

void FrontEnd::begin_shutdown() {
    ctx_.draining.store(true);
    net::post(threads_[0]->context(), [this] {
        if (listener_)
            listener_->close();
    });
    for (auto& t : threads_)
        t->begin_shutdown();
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
