// --reload in the master: which directories are watched, which changes count (uvicorn's
// globs, reload_filter.hpp) and when a burst of them has settled (--reload-delay). The
// master polls fd() with its other descriptors and, when take_due() names files,
// replaces its workers the way SIGHUP does (new before old; a new worker that fails to
// start leaves the old one serving). Workers are forked from the master, which never
// imports Python, so each new worker imports the changed modules afresh.
#pragma once

#include "config/settings.hpp"
#include "server/file_watcher.hpp"
#include "server/reload_filter.hpp"

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace narwhal::server {

class Reloader {
public:
    using Clock = std::chrono::steady_clock;

    // Resolves the directories (reload_dirs, else the current directory and app_dir) and
    // watches them. Throws std::system_error when inotify cannot be set up.
    explicit Reloader(const config::Settings& settings);

    int fd() const { return watcher_.fd(); }
    const std::vector<std::filesystem::path>& dirs() const { return dirs_; }

    // fd() is readable: matching changes start the debounce, or push it back.
    void on_readable(Clock::time_point now);
    // When the master's poll must wake for the debounce; none while nothing is pending.
    std::optional<Clock::time_point> deadline() const;
    // Once the debounce is over: the changed files for the log, "'app.py', 'models.py'"
    // (relative to the current directory when under it, as uvicorn shows them), and the
    // pending set is cleared. Nothing before then.
    std::optional<std::string> take_due(Clock::time_point now);

private:
    std::vector<std::filesystem::path> dirs_;
    ReloadFilter filter_;
    FileWatcher watcher_;
    Clock::duration delay_;
    std::vector<std::string> pending_;  // display names, in order of first change
    std::optional<Clock::time_point> first_change_;
    std::optional<Clock::time_point> last_change_;
};

// reload_dirs made absolute, those that are not directories left out (logged), nested ones
// folded into their parent; the current directory (and app_dir) when none is given or
// none is left.
std::vector<std::filesystem::path> resolve_reload_dirs(const config::Settings& settings);

}  // namespace narwhal::server
