// The server's logger. Lines look like uvicorn's ("INFO:     message") so log
// scrapers keep working, or one JSON object per line with --log-format json. Every
// line is one write(2), so lines from different threads never interleave.
#pragma once

#include <fmt/format.h>

#include <string_view>

namespace narwhal::log {

enum class Level { trace, debug, info, warning, error, critical };

void configure(Level min_level, bool json, bool access_log);
bool enabled(Level level);
bool access_enabled();
void write(Level level, std::string_view message);
bool json();
// A structured report: `message` is the human text (the whole line in text mode);
// `fields` are extra JSON members ("\"event\": \"x\", \"n\": 1") added in json mode.
void event(Level level, std::string_view message, std::string_view fields);
// `s` as a JSON string literal, quotes included.
std::string json_string(std::string_view s);

// Access log line: `127.0.0.1:54321 - "GET /path HTTP/1.1" 200`.
void access(std::string_view client, std::string_view method, std::string_view target,
            int http_version, int status);

template <typename... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
    if (enabled(Level::info))
        write(Level::info, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void warning(fmt::format_string<Args...> f, Args&&... args) {
    if (enabled(Level::warning))
        write(Level::warning, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void error(fmt::format_string<Args...> f, Args&&... args) {
    if (enabled(Level::error))
        write(Level::error, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void debug(fmt::format_string<Args...> f, Args&&... args) {
    if (enabled(Level::debug))
        write(Level::debug, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace narwhal::log
