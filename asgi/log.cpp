#include "asgi/log.hpp"

#include "asgi/log_queue.hpp"
#include "asgi/status_reasons.hpp"
#include "asgi/target.hpp"

#include <atomic>
#include <chrono>
#include <cstring>
#include <ctime>
#include <string>
#include <unistd.h>

namespace narwhal::log {

namespace {
std::atomic<int> min_level{static_cast<int>(Level::info)};
std::atomic<bool> json_format{false};
std::atomic<bool> access_on{true};
std::atomic<bool> colors_on{false};
std::atomic<unsigned> forward_mask{0};

// uvicorn's level prefix: the name and a colon, padded so messages line up.
constexpr std::string_view prefix(Level level) {
    switch (level) {
    case Level::trace: return "TRACE:    ";
    case Level::debug: return "DEBUG:    ";
    case Level::info: return "INFO:     ";
    case Level::warning: return "WARNING:  ";
    case Level::error: return "ERROR:    ";
    case Level::critical: return "CRITICAL: ";
    }
    return "";
}

// The same with the level name in uvicorn's colours (ANSI SGR), for a terminal.
constexpr std::string_view colored_prefix(Level level) {
    switch (level) {
    case Level::trace: return "\x1b[34mTRACE\x1b[0m:    ";
    case Level::debug: return "\x1b[36mDEBUG\x1b[0m:    ";
    case Level::info: return "\x1b[32mINFO\x1b[0m:     ";
    case Level::warning: return "\x1b[33mWARNING\x1b[0m:  ";
    case Level::error: return "\x1b[31mERROR\x1b[0m:    ";
    case Level::critical: return "\x1b[91mCRITICAL\x1b[0m: ";
    }
    return "";
}

constexpr std::string_view name(Level level) {
    switch (level) {
    case Level::trace: return "trace";
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warning: return "warning";
    case Level::error: return "error";
    case Level::critical: return "critical";
    }
    return "";
}

void append_json_string(std::string& out, std::string_view s) {
    out.push_back('"');
    for (unsigned char c : s) {
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            if (c < 0x20)
                fmt::format_to(std::back_inserter(out), "\\u{:04x}", c);
            else
                out.push_back(static_cast<char>(c));
        }
    }
    out.push_back('"');
}

double now_seconds() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// Local time as "2026-12-01 14:31:22.123" (text) or "2026-12-01T14:31:22.123+01:00"
// (json). localtime_r is slow and may take a lock, so each thread keeps the formatted
// second it last saw: most lines in a busy second format only their milliseconds.
void append_timestamp(std::string& out, double ts, bool iso) {
    struct Cache {
        std::time_t second = -1;
        char date[11] = {};  // "2026-12-01"
        char time[9] = {};   // "14:31:22"
        char zone[7] = {};   // "+01:00"
    };
    thread_local Cache cache;
    auto second = static_cast<std::time_t>(ts);
    int ms = static_cast<int>((ts - static_cast<double>(second)) * 1000);
    ms = ms < 0 ? 0 : ms > 999 ? 999 : ms;
    if (second != cache.second) {
        std::tm tm{};
        ::localtime_r(&second, &tm);
        std::strftime(cache.date, sizeof cache.date, "%Y-%m-%d", &tm);
        std::strftime(cache.time, sizeof cache.time, "%H:%M:%S", &tm);
        long off = tm.tm_gmtoff / 60;
        fmt::format_to_n(cache.zone, sizeof cache.zone - 1, "{}{:02}:{:02}", off < 0 ? '-' : '+',
                         (off < 0 ? -off : off) / 60, (off < 0 ? -off : off) % 60);
        cache.second = second;
    }
    // Fixed widths and hand-made digits: this runs for every access line.
    char stamp[] = "YYYY-MM-DDTHH:MM:SS.mmm";
    std::memcpy(stamp, cache.date, 10);
    stamp[10] = iso ? 'T' : ' ';
    std::memcpy(stamp + 11, cache.time, 8);
    stamp[20] = static_cast<char>('0' + ms / 100);
    stamp[21] = static_cast<char>('0' + ms / 10 % 10);
    stamp[22] = static_cast<char>('0' + ms % 10);
    out.append(stamp, sizeof stamp - 1);
    if (iso)
        out.append(cache.zone, 6);
}

void emit(const std::string& line) {
    std::size_t off = 0;
    while (off < line.size()) {
        ssize_t n = ::write(2, line.data() + off, line.size() - off);
        if (n <= 0)
            return;
        off += static_cast<std::size_t>(n);
    }
}

// A text line up to its message: "2026-12-01 14:31:22.123 INFO:     ".
void append_text_head(std::string& line, Level level, double ts) {
    append_timestamp(line, ts, false);
    line.push_back(' ');
    line.append(colors_on.load(std::memory_order_relaxed) ? colored_prefix(level) : prefix(level));
}

void write_line(Level level, std::string_view logger, std::string_view message,
                std::string_view fields, double ts) {
    std::string line;
    if (json_format.load(std::memory_order_relaxed)) {
        line.reserve(message.size() + fields.size() + 120);
        fmt::format_to(std::back_inserter(line), "{{\"ts\": {:.6f}, \"timestamp\": \"", ts);
        append_timestamp(line, ts, true);
        fmt::format_to(std::back_inserter(line),
                       "\", \"level\": \"{}\", \"logger\": ", name(level));
        append_json_string(line, logger);
        line.append(", ");
        if (!fields.empty()) {
            line.append(fields);
            line.append(", ");
        }
        line.append("\"message\": ");
        append_json_string(line, message);
        line += "}\n";
    } else {
        line.reserve(message.size() + 48);
        append_text_head(line, level, ts);
        line.append(message);
        line.push_back('\n');
    }
    emit(line);
}

bool forwarding(Logger l) {
    return (forward_mask.load(std::memory_order_relaxed) & logger_bit(l)) != 0;
}

void forward(Record&& r) { queue().push(std::move(r)); }

// A record that is either written here or handed to the bridge.
void submit(Level level, Logger logger, std::string_view message, std::string_view fields) {
    double ts = now_seconds();
    if (forwarding(logger)) {
        Record r;
        r.level = level;
        r.logger = logger;
        r.ts = ts;
        r.message = message;
        r.fields = fields;
        forward(std::move(r));
        return;
    }
    write_line(level, logger_name(logger), message, fields, ts);
}
}  // namespace

void configure(Level level, bool json, bool access_log, bool colors) {
    min_level = static_cast<int>(level);
    json_format = json;
    access_on = access_log;
    colors_on = colors && !json;
}

bool enabled(Level level) {
    return static_cast<int>(level) >= min_level.load(std::memory_order_relaxed);
}

bool access_enabled() { return access_on.load(std::memory_order_relaxed) && enabled(Level::info); }

bool json() { return json_format.load(std::memory_order_relaxed); }

void set_forwarded(unsigned loggers) { forward_mask.store(loggers, std::memory_order_relaxed); }

unsigned forwarded() { return forward_mask.load(std::memory_order_relaxed); }

std::string json_string(std::string_view s) {
    std::string out;
    append_json_string(out, s);
    return out;
}

std::string json_string_or_null(std::string_view s) {
    return s.empty() ? std::string("null") : json_string(s);
}

void event(Level level, std::string_view message, std::string_view fields) {
    if (!enabled(level))
        return;
    submit(level, Logger::narwhal, message, json() || forwarding(Logger::narwhal) ? fields : "");
}

void write(Level level, std::string_view message) { submit(level, Logger::error, message, {}); }

void write_record(Level level, std::string_view logger, std::string_view message,
                  std::string_view fields, double ts) {
    write_line(level, logger, message, fields, ts);
}

void access(const HttpAccess& a) {
    const std::string_view client = a.client, method = a.method, target = a.target;
    const int http_version = a.http_version, status = a.status;
    if (!forwarding(Logger::access) && !json()) {
        // The common case, once per request: the line formatted in place. It ends with the
        // reason phrase, as uvicorn's default access format writes it ("200 OK"); the
        // record's message (JSON, a forwarded record) is uvicorn's, without it.
        std::string line;
        line.reserve(96 + client.size() + target.size());
        append_text_head(line, Level::info, now_seconds());
        fmt::format_to(std::back_inserter(line), "{} - \"{} {} HTTP/{}.{}\" {} {}\n", client,
                       method, target, http_version / 10, http_version % 10, status,
                       asgi::status_reason(status));
        emit(line);
        return;
    }
    std::string version = fmt::format("{}.{}", http_version / 10, http_version % 10);
    std::string message =
        fmt::format("{} - \"{} {} HTTP/{}\" {}", client, method, target, version, status);
    if (!forwarding(Logger::access)) {
        auto parts = asgi::split_target(target);
        std::string fields = fmt::format(
            "\"event\": \"http\", \"client\": {}, \"method\": {}, \"path\": {}, "
            "\"query_string\": {}, \"http_version\": \"{}\", \"status\": {}, \"bytes_out\": {}, "
            "\"duration_s\": {:.6f}, \"queue_s\": {:.6f}, \"app_s\": {:.6f}, \"request_id\": {}, "
            "\"user_agent\": {}, \"worker\": {}, \"interpreter\": {}",
            json_string(client), json_string(method), json_string(parts.raw_path),
            json_string(parts.query_string), version, status, a.bytes_out, a.duration_s, a.queue_s,
            a.app_s, json_string_or_null(a.request_id), json_string_or_null(a.user_agent), a.worker,
            a.interpreter);
        write_line(Level::info, logger_name(Logger::access), message, fields, now_seconds());
        return;
    }
    Record r;
    r.level = Level::info;
    r.logger = Logger::access;
    r.ts = now_seconds();
    r.message = std::move(message);
    r.client = client;
    r.method = method;
    r.target = target;
    r.http_version = std::move(version);
    r.status = status;
    forward(std::move(r));
}

void websocket_access(const WebSocketAccess& a) {
    const bool accepted = a.status == 101;
    std::string message =
        accepted ? fmt::format("{} - \"WebSocket {}\" {} closed by {} after {:.3f} s, in: {} "
                               "messages {} bytes, out: {} messages {} bytes",
                               a.client, a.target, a.close_code, a.closed_by, a.seconds,
                               a.messages_in, a.bytes_in, a.messages_out, a.bytes_out)
                 : fmt::format("{} - \"WebSocket {}\" {} refused after {:.3f} s", a.client,
                               a.target, a.status, a.seconds);
    if (!json() && !forwarding(Logger::access)) {
        submit(Level::info, Logger::access, message, {});
        return;
    }
    auto parts = asgi::split_target(a.target);
    std::string fields = fmt::format(
        "\"event\": \"websocket\", \"client\": {}, \"path\": {}, \"query_string\": {}, "
        "\"status\": {}, \"close_code\": {}, \"closed_by\": {}, \"duration_s\": {:.6f}, "
        "\"messages_in\": {}, \"bytes_in\": {}, \"messages_out\": {}, \"bytes_out\": {}, "
        "\"request_id\": {}",
        json_string(a.client), json_string(parts.raw_path), json_string(parts.query_string),
        a.status, accepted ? std::to_string(a.close_code) : std::string("null"),
        accepted ? json_string(a.closed_by) : std::string("null"), a.seconds, a.messages_in,
        a.bytes_in, a.messages_out, a.bytes_out, json_string_or_null(a.request_id));
    submit(Level::info, Logger::access, message, fields);
}

}  // namespace narwhal::log
