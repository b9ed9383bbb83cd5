// The service manager's protocols, through libsystemd: socket activation (LISTEN_FDS,
// LISTEN_PID, LISTEN_FDNAMES), readiness and state notifications (NOTIFY_SOCKET) and the
// watchdog keep-alive (WATCHDOG_USEC). Outside systemd every call here is a no-op: the
// environment is read once, at start, and nothing else is looked up afterwards.
//
// Who speaks: the process systemd started (a single process, or the master of --workers).
// Forked workers are told to stay silent (forget_in_child), so that NotifyAccess=main is
// enough and no worker's READY=1 is taken for the service's.
#pragma once

#include "config/settings.hpp"

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace narwhal::server::systemd {

// --- socket activation ----------------------------------------------------------

// What the sockets systemd passed became. A socket named "metrics" serves --metrics-bind
// when metrics are on; the first other one is the HTTP listener (as with --fd). The rest
// cannot be served (one HTTP listener per process) and are closed with a warning.
struct Activation {
    int http_fd = -1;
    int metrics_fd = -1;
    std::vector<std::string> warnings;
    bool active() const { return http_fd >= 0 || metrics_fd >= 0; }
    // Points the settings at the passed sockets (also on every SIGHUP's reread, so the
    // listener keys keep their running values).
    void apply(config::Settings& settings) const;
};

// Takes the sockets passed to this process (LISTEN_PID must be our PID) and removes the
// variables from the environment, as sd_listen_fds(1) does, so that neither workers nor
// the app adopt them again. Empty outside socket activation.
Activation take_passed_sockets(const config::Settings& settings);

// --- notifications ----------------------------------------------------------------

// Reads NOTIFY_SOCKET and WATCHDOG_USEC once (main, before anything is forked).
void init();
// In a forked worker: nothing is sent from here on, and the variables are removed so the
// app does not take the service's socket for its own.
void forget_in_child();

bool notifying();
// READY=1 with a STATUS= line: the server accepts.
void ready(std::string_view status);
// RELOADING=1 with MONOTONIC_USEC= (what Type=notify-reload of systemd 253 expects; older
// versions ignore it), then ready() when the reload is done.
void reloading(std::string_view status);
// STOPPING=1: shutdown begins (the listener closes, in-flight requests drain).
void stopping(std::string_view status);
void status(std::string_view status);

// --- watchdog -----------------------------------------------------------------------

// How often to send WATCHDOG=1: half of WatchdogSec; zero when the watchdog is off.
std::chrono::microseconds watchdog_period();
void watchdog();

}  // namespace narwhal::server::systemd
