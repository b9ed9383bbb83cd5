#include "server/reloader.hpp"

#include "asgi/log.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <system_error>

namespace narwhal::server {

namespace {

// A burst that never settles (a build writing for minutes) still restarts: at most this
// many delays after its first change.
constexpr int max_delays_per_burst = 8;

// Strictly below `dir`.
bool under(const std::filesystem::path& path, const std::filesystem::path& dir) {
    auto rel = path.lexically_relative(dir);
    return !rel.empty() && rel != "." && *rel.begin() != "..";
}

std::string display(const std::filesystem::path& path) {
    std::error_code ec;
    auto cwd = std::filesystem::current_path(ec);
    if (!ec && under(path, cwd))
        return fmt::format("'{}'", path.lexically_relative(cwd).string());
    return fmt::format("'{}'", path.string());
}

}  // namespace

std::vector<std::filesystem::path> resolve_reload_dirs(const config::Settings& settings) {
    std::vector<std::string> wanted = settings.reload_dirs;
    if (wanted.empty())
        wanted = {".", settings.app_dir.empty() ? "." : settings.app_dir};
    std::vector<std::filesystem::path> dirs;
    for (const std::string& dir : wanted) {
        std::error_code ec;
        auto path = std::filesystem::weakly_canonical(std::filesystem::absolute(dir, ec), ec);
        if (ec || !std::filesystem::is_directory(path, ec)) {
            log::warning("--reload-dir {}: not a directory, not watched", dir);
            continue;
        }
        dirs.push_back(path);
    }
    if (dirs.empty()) {
        std::error_code ec;
        dirs.push_back(std::filesystem::current_path(ec));
        if (!settings.reload_dirs.empty())
            log::warning("No --reload-dir is a directory: watching the current directory");
    }
    // A directory under another is already watched with it.
    std::sort(dirs.begin(), dirs.end());
    dirs.erase(std::unique(dirs.begin(), dirs.end()), dirs.end());
    std::erase_if(dirs, [&dirs](const std::filesystem::path& d) {
        return std::any_of(dirs.begin(), dirs.end(),
                           [&d](const std::filesystem::path& other) { return under(d, other); });
    });
    return dirs;
}

Reloader::Reloader(const config::Settings& settings)
    : dirs_(resolve_reload_dirs(settings)),
      filter_(settings.reload_includes, settings.reload_excludes),
      watcher_(dirs_,
               [this](const std::filesystem::path& dir) { return filter_.excluded_dir(dir); }),
      delay_(std::chrono::duration_cast<Clock::duration>(
          std::chrono::duration<double>(settings.reload_delay))) {
    std::vector<std::string> shown;
    for (const auto& dir : dirs_)
        shown.push_back(fmt::format("'{}'", dir.string()));
    // uvicorn's line, with what narwhal adds: how it watches and what.
    log::info("Will watch for changes in these directories: [{}]", fmt::join(shown, ", "));
    log::info("Watching {} directories with inotify for [{}], excluding [{}]",
              watcher_.directories(), fmt::join(filter_.includes(), ", "),
              fmt::join(filter_.excludes(), ", "));
}

void Reloader::on_readable(Clock::time_point now) {
    for (const auto& path : watcher_.on_readable()) {
        // An empty path: the kernel dropped events (queue overflow); restart to be safe.
        if (!path.empty() && !filter_.matches(path))
            continue;
        std::string name = path.empty() ? "'(events lost)'" : display(path);
        if (std::find(pending_.begin(), pending_.end(), name) == pending_.end())
            pending_.push_back(std::move(name));
        if (!first_change_)
            first_change_ = now;
        last_change_ = now;
    }
}

std::optional<Reloader::Clock::time_point> Reloader::deadline() const {
    if (!last_change_)
        return std::nullopt;
    return std::min(*last_change_ + delay_, *first_change_ + max_delays_per_burst * delay_);
}

std::optional<std::string> Reloader::take_due(Clock::time_point now) {
    auto due = deadline();
    if (!due || now < *due)
        return std::nullopt;
    std::string names = fmt::format("{}", fmt::join(pending_, ", "));
    pending_.clear();
    first_change_.reset();
    last_change_.reset();
    return names;
}

}  // namespace narwhal::server
