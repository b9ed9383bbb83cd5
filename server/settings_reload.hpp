// What a SIGHUP applies of a configuration read again. The master keeps the listening
// sockets it bound at start (its workers inherit them, and it has no privileges to bind
// again after dropping them), so the settings that shape those sockets keep their
// running values and are reported as needing a full restart; every other setting is
// applied to the workers the rolling restart starts.
#pragma once

#include "config/settings.hpp"

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace narwhal::server {

// The keys of the settings that shape the listeners the master binds once: the address
// (host, port, uds, fd), how it is shared (reuse_port) and its queue (backlog). env_file
// too: the master reads it into its own environment once, before the first fork, and
// workers inherit that environment. And --reload's: the master's watch, made once.
std::span<const std::string_view> restart_only_keys();

struct SettingsReload {
    // `loaded`, with the restart-only settings at their running values.
    config::Settings applied;
    // Keys whose value differs from the running one and that the new workers get.
    std::vector<std::string> changed;
    // One line per restart-only setting that differs: "port: 9000 (running: 8000)".
    std::vector<std::string> need_restart;
    // `workers` differs from the running value: the master takes `applied.workers` as its
    // new target (0, one process without a master, is itself a full restart: reported in
    // need_restart, and `workers_changed` stays false).
    bool workers_changed = false;
};

// `running`: the settings as the master loaded them last (before binding: its own port 0
// stays 0 here, not the port the kernel chose). `loaded`: the same sources read again.
SettingsReload reload_settings(const config::Settings& running, const config::Settings& loaded);

}  // namespace narwhal::server
