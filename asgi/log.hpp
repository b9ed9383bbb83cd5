// The server's logger. Lines look like uvicorn's ("INFO:     message", after a
// timestamp) so log scrapers keep working, or one JSON object per line with
// --log-format json. Every line is one write(2), so lines from different threads never
// interleave.
//
// Each record belongs to one of uvicorn's loggers (Logger below). When Python's
// `logging` has to see a logger's records (--log-config, or an app that attached
// handlers or filters to it), that logger is forwarded: its records go into a bounded
// queue (log_queue.hpp) that a GIL-taking thread delivers, so no I/O thread ever waits
// for Python. Otherwise the record is formatted and written here, on the calling thread.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace narwhal::log {

enum class Level { trace, debug, info, warning, error, critical };

// The Python logger a record belongs to: uvicorn's names, so that an app's handlers and
// filters written for uvicorn see narwhal's records; narwhal's structured reports
// (watchdog, stats) have their own.
enum class Logger : uint8_t { error, access, narwhal };
constexpr std::string_view logger_name(Logger l) {
    switch (l) {
    case Logger::error: return "uvicorn.error";
    case Logger::access: return "uvicorn.access";
    case Logger::narwhal: return "narwhal";
    }
    return "";
}
constexpr unsigned logger_bit(Logger l) { return 1u << static_cast<unsigned>(l); }
constexpr unsigned all_loggers = 0b111;

void configure(Level min_level, bool json, bool access_log, bool colors = false);
bool enabled(Level level);
bool access_enabled();
void write(Level level, std::string_view message);
bool json();
// A structured report: `message` is the human text (the whole line in text mode);
// `fields` are extra JSON members ("\"event\": \"x\", \"n\": 1") added in json mode.
void event(Level level, std::string_view message, std::string_view fields);
// `s` as a JSON string literal, quotes included.
std::string json_string(std::string_view s);
// The same, or `null` for an empty `s` (a value that is absent, not empty).
std::string json_string_or_null(std::string_view s);

// One HTTP request, logged when its response has ended.
struct HttpAccess {
    std::string_view client;  // "host:port" (after proxy headers) or "unix"
    std::string_view method;  // "-" when the request line was not readable
    std::string_view target;  // path and query, as received
    int http_version = 11;    // 10 or 11
    int status = 0;
    uint64_t bytes_out = 0;       // response body bytes
    double duration_s = 0;        // from the complete head to the response's last byte
    double queue_s = 0;           // of that, waiting for an admission slot
    double app_s = 0;             // of that, from the app getting the request to the end
    std::string_view request_id;  // empty: none
    std::string_view user_agent;  // empty: none sent
    int worker = 0;               // the worker's process id, as watchdog reports name it
    int interpreter = 0;
};
// Text: uvicorn's line, `127.0.0.1:54321 - "GET /path HTTP/1.1" 200 OK`. In --log-format
// json the facts are members: event "http", client, method, path, query_string,
// http_version, status, bytes_out, duration_s, queue_s, app_s, request_id, user_agent,
// worker, interpreter.
void access(const HttpAccess& a);

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
    std::string_view request_id;  // the upgrade request's; empty: none
};
// `127.0.0.1:54321 - "WebSocket /chat" 1000 closed by client after 2.315 s, in: 3
// messages 45 bytes, out: 3 messages 45 bytes` (one line); a refused handshake:
// `... - "WebSocket /chat" 403 refused after 0.002 s`. In --log-format json the same
// facts are members: event "websocket", client, path, query_string, status,
// close_code, closed_by, duration_s, messages_in, bytes_in, messages_out, bytes_out,
// request_id.
void websocket_access(const WebSocketAccess& a);

// --- the Python logging bridge --------------------------------------------------------

// Which loggers' records go to the queue instead of being written here (logger_bit
// values). Set by the bridge once its delivery thread runs, cleared before it stops.
void set_forwarded(unsigned loggers);
unsigned forwarded();

// Writes one record formatted as narwhal's own lines, never forwarding it: what the
// default handler does with a record Python's logging delivered to it (an app's own
// record, or one of ours that went through Python). `logger` is shown in json mode;
// `fields` as in event(); `ts` is the record's creation time (seconds since the epoch).
void write_record(Level level, std::string_view logger, std::string_view message,
                  std::string_view fields, double ts);

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
