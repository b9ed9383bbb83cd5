#include "server/settings_reload.hpp"

#include "config/options.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>

namespace narwhal::server {

std::span<const std::string_view> restart_only_keys() {
    // metrics_bind: the master's listener, bound once like the others. The reload keys:
    // the master's inotify watch, set up once before the first fork.
    static constexpr std::array<std::string_view, 13> keys = {"host",
                                                              "port",
                                                              "uds",
                                                              "fd",
                                                              "reuse_port",
                                                              "backlog",
                                                              "env_file",
                                                              "metrics_bind",
                                                              "reload",
                                                              "reload_dirs",
                                                              "reload_includes",
                                                              "reload_excludes",
                                                              "reload_delay"};
    return keys;
}

SettingsReload reload_settings(const config::Settings& running, const config::Settings& loaded) {
    SettingsReload out;
    out.applied = loaded;
    auto keeps = restart_only_keys();
    for (const config::Option& o : config::options()) {
        config::Value was = o.get(running);
        config::Value is = o.get(loaded);
        if (was == is)
            continue;
        // Quoted text, so that an empty value ("uds: ''") still reads as one.
        auto show = [&o](const config::Value& v) {
            return o.kind == config::Kind::string ? config::quote(std::get<std::string>(v))
                                                  : config::format_value(o, v);
        };
        std::string now = show(was);
        std::string next = show(is);
        if (std::find(keeps.begin(), keeps.end(), o.key) != keeps.end()) {
            out.need_restart.push_back(fmt::format("{}: {} (running: {})", o.key, next, now));
            o.set(out.applied, was);
        } else if (o.key == "workers" && loaded.workers == 0) {
            out.need_restart.push_back(fmt::format(
                "{}: {} (one process without a master; running: {})", o.key, next, now));
            out.applied.workers = running.workers;
        } else {
            out.changed.emplace_back(o.key);
            if (o.key == "workers")
                out.workers_changed = true;
        }
    }
    return out;
}

}  // namespace narwhal::server
