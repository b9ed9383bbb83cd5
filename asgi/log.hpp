// The server's logger. Lines look like uvicorn's ("INFO:     message") so log
// scrapers keep working, or one JSON object per line with --log-format json. Every
// line is one write(2), so lines from different threads never interleave.
#pragma once

#include <fmt/format.h>

#include <cstdint>
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

// One WebSocket session, logged when it ends. Counts are of whole messages and their
// payload bytes (before any compression); "in" is from the client.
struct WebSocketAccess {
    std::string_view client;     // "host:port" or "unix"
    std::string_view target;     // the upgrade request's target: path and query
    int status = 101;            // 101: accepted; else the HTTP status answered instead
    int close_code = 0;          // accepted sessions: the close code (1006: no close frame)
    std::string_view closed_by;  // accepted sessions: "client", "app" or "server"
    double seconds = 0;          // from the upgrade request to the close
    uint64_t messages_in = 0;
    uint64_t bytes_in = 0;
    uint64_t messages_out = 0;
    uint64_t bytes_out = 0;
};
// `127.0.0.1:54321 - "WebSocket /chat" 1000 closed by client after 2.315 s, in: 3
// messages 45 bytes, out: 3 messages 45 bytes` (one line); a refused handshake:
// `... - "WebSocket /chat" 403 refused after 0.002 s`. In --log-format json the same
// facts are members: event "websocket", client, path, query_string, status,
// close_code, closed_by, duration_s, messages_in, bytes_in, messages_out, bytes_out.
void websocket_access(const WebSocketAccess& a);

template <typename... Args> void info(fmt::format_string<Args...> f, Args&&... args) {
    if (enabled(Level::info))
        write(Level::info, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args> void warning(fmt::format_string<Args...> f, Args&&... args) {
    if (enabled(Level::warning))
        write(Level::warning, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args> void error(fmt::format_string<Args...> f, Args&&... args) {
    if (enabled(Level::error))
        write(Level::error, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args> void debug(fmt::format_string<Args...> f, Args&&... args) {
    if (enabled(Level::debug))
        write(Level::debug, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace narwhal::log
