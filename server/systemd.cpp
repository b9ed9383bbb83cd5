#include "server/systemd.hpp"

#include "asgi/log.hpp"

#include <fmt/format.h>
#include <systemd/sd-daemon.h>

#include <cstdlib>
#include <cstring>
#include <ctime>
#include <unistd.h>

namespace narwhal::server::systemd {

namespace {

// Read once in init(): the checks on the way to each message cost a load, not a getenv.
bool notify_ = false;
std::chrono::microseconds watchdog_period_{0};

void send(const std::string& message) {
    if (!notify_)
        return;
    if (int rc = sd_notify(0, message.c_str()); rc < 0)
        log::warning("systemd notification failed: {}", std::strerror(-rc));
}

}  // namespace

void Activation::apply(config::Settings& settings) const {
    if (http_fd >= 0) {
        settings.fd = http_fd;
        settings.uds.clear();
    }
    if (metrics_fd >= 0)
        settings.metrics_bind = fmt::format("fd:{}", metrics_fd);
}

Activation take_passed_sockets(const config::Settings& settings) {
    Activation out;
    char** names = nullptr;
    int n = sd_listen_fds_with_names(1, &names);
    if (n < 0) {
        out.warnings.push_back(fmt::format("LISTEN_FDS: {}", std::strerror(-n)));
        return out;
    }
    for (int i = 0; i < n; ++i) {
        int fd = SD_LISTEN_FDS_START + i;
        std::string name = names && names[i] ? names[i] : "";
        if (name == "metrics" && !settings.metrics_bind.empty() && out.metrics_fd < 0) {
            out.metrics_fd = fd;
        } else if (name != "metrics" && out.http_fd < 0) {
            out.http_fd = fd;
        } else {
            out.warnings.push_back(
                fmt::format("Socket {} (\"{}\") passed by systemd is not served: {}", fd, name,
                            name == "metrics" ? "metrics are off (--metrics-bind)"
                                              : "narwhal serves one HTTP listener per process"));
            ::close(fd);
        }
    }
    if (names) {
        for (int i = 0; i < n; ++i)
            std::free(names[i]);
        std::free(names);
    }
    return out;
}

void init() {
    const char* socket = std::getenv("NOTIFY_SOCKET");
    notify_ = socket && *socket;
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0)
        watchdog_period_ = std::chrono::microseconds(usec / 2);
}

void forget_in_child() {
    notify_ = false;
    watchdog_period_ = std::chrono::microseconds(0);
    for (const char* name : {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"})
        ::unsetenv(name);
}

bool notifying() { return notify_; }

void ready(std::string_view status) { send(fmt::format("READY=1\nSTATUS={}", status)); }

void reloading(std::string_view status) {
    if (!notify_)
        return;
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t usec =
        static_cast<uint64_t>(ts.tv_sec) * 1'000'000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
    send(fmt::format("RELOADING=1\nMONOTONIC_USEC={}\nSTATUS={}", usec, status));
}

void stopping(std::string_view status) { send(fmt::format("STOPPING=1\nSTATUS={}", status)); }

void status(std::string_view status) { send(fmt::format("STATUS={}", status)); }

std::chrono::microseconds watchdog_period() { return watchdog_period_; }

void watchdog() {
    if (watchdog_period_.count() > 0)
        send("WATCHDOG=1");
}

}  // namespace narwhal::server::systemd
