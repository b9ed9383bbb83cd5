#include "asgi/log.hpp"

#include "asgi/target.hpp"

#include <atomic>
#include <chrono>
#include <string>
#include <unistd.h>

namespace narwhal::log {

namespace {
std::atomic<int> min_level{static_cast<int>(Level::info)};
std::atomic<bool> json_format{false};
std::atomic<bool> access_on{true};

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

void emit(const std::string& line) {
    std::size_t off = 0;
    while (off < line.size()) {
        ssize_t n = ::write(2, line.data() + off, line.size() - off);
        if (n <= 0)
            return;
        off += static_cast<std::size_t>(n);
    }
}
}  // namespace

void configure(Level level, bool json, bool access_log) {
    min_level = static_cast<int>(level);
    json_format = json;
    access_on = access_log;
}

bool enabled(Level level) {
    return static_cast<int>(level) >= min_level.load(std::memory_order_relaxed);
}

bool access_enabled() { return access_on.load(std::memory_order_relaxed) && enabled(Level::info); }

bool json() { return json_format.load(std::memory_order_relaxed); }

std::string json_string(std::string_view s) {
    std::string out;
    append_json_string(out, s);
    return out;
}

void event(Level level, std::string_view message, std::string_view fields) {
    if (!enabled(level))
        return;
    if (!json()) {
        write(level, message);
        return;
    }
    auto now = std::chrono::system_clock::now().time_since_epoch();
    double ts = std::chrono::duration<double>(now).count();
    std::string line = fmt::format("{{\"ts\": {:.6f}, \"level\": \"{}\", ", ts, name(level));
    if (!fields.empty()) {
        line.append(fields);
        line.append(", ");
    }
    line.append("\"message\": ");
    append_json_string(line, message);
    line += "}\n";
    emit(line);
}

void write(Level level, std::string_view message) {
    std::string line;
    if (json_format.load(std::memory_order_relaxed)) {
        auto now = std::chrono::system_clock::now().time_since_epoch();
        double ts = std::chrono::duration<double>(now).count();
        line = fmt::format("{{\"ts\": {:.6f}, \"level\": \"{}\", \"message\": ", ts, name(level));
        append_json_string(line, message);
        line += "}\n";
    } else {
        line.reserve(message.size() + 12);
        line.append(prefix(level));
        line.append(message);
        line.push_back('\n');
    }
    emit(line);
}

void access(std::string_view client, std::string_view method, std::string_view target,
            int http_version, int status) {
    write(Level::info, fmt::format("{} - \"{} {} HTTP/{}.{}\" {}", client, method, target,
                                   http_version / 10, http_version % 10, status));
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
    if (!json()) {
        write(Level::info, message);
        return;
    }
    auto parts = asgi::split_target(a.target);
    std::string fields = fmt::format(
        "\"event\": \"websocket\", \"client\": {}, \"path\": {}, \"query_string\": {}, "
        "\"status\": {}, \"close_code\": {}, \"closed_by\": {}, \"duration_s\": {:.6f}, "
        "\"messages_in\": {}, \"bytes_in\": {}, \"messages_out\": {}, \"bytes_out\": {}",
        json_string(a.client), json_string(parts.raw_path), json_string(parts.query_string),
        a.status, accepted ? std::to_string(a.close_code) : std::string("null"),
        accepted ? json_string(a.closed_by) : std::string("null"), a.seconds, a.messages_in,
        a.bytes_in, a.messages_out, a.bytes_out);
    event(Level::info, message, fields);
}

}  // namespace narwhal::log
