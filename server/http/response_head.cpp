#include "server/http/response_head.hpp"

#include "asgi/errors.hpp"
#include "asgi/status_reasons.hpp"

#include <fmt/format.h>

#include <ctime>

namespace narwhal::server::http {

std::string_view reason_phrase(int status) {
    std::string_view s = asgi::status_reason(status);
    // An unregistered code (299, 499, ...) still gets a plain word in its status line.
    return s.empty() ? "Unknown" : s;
}

std::string_view http_date() {
    thread_local std::time_t cached_second = 0;
    thread_local char buffer[64];
    thread_local std::size_t size = 0;
    std::time_t now = std::time(nullptr);
    if (now != cached_second) {
        std::tm tm{};
        ::gmtime_r(&now, &tm);
        size = std::strftime(buffer, sizeof buffer, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        cached_second = now;
    }
    return {buffer, size};
}

namespace {
void append_line(std::string& out, std::string_view name, std::string_view value) {
    out.append(name);
    out.append(": ");
    out.append(value);
    out.append("\r\n");
}

void append_defaults(std::string& out, const ResponseDefaults& defaults) {
    if (defaults.server_header)
        out.append("server: narwhal\r\n");
    if (defaults.date_header)
        append_line(out, "date", http_date());
    for (const auto& [name, value] : defaults.extra)
        append_line(out, name, value);
}
}  // namespace

void append_response_head(std::string& out, const ResponseHeadSpec& spec,
                          const ResponseDefaults& defaults) {
    // Always our own version (RFC 9110 6.2), also to HTTP/1.0 clients.
    out.append("HTTP/1.1 ");
    fmt::format_to(std::back_inserter(out), "{} ", spec.status);
    out.append(reason_phrase(spec.status));
    out.append("\r\n");
    append_defaults(out, defaults);
    bool send_request_id = !spec.request_id.empty() && !defaults.request_id_header.empty();
    if (spec.app_headers)
        for (const auto& [name, value] : *spec.app_headers) {
            append_line(out, name, value);
            if (send_request_id && name == defaults.request_id_header)
                send_request_id = false;  // the app's own id stands
        }
    if (send_request_id)
        append_line(out, defaults.request_id_header, spec.request_id);
    if (spec.framing == Framing::content_length && !spec.app_gave_length)
        fmt::format_to(std::back_inserter(out), "content-length: {}\r\n", spec.content_length);
    else if (spec.framing == Framing::chunked)
        out.append("transfer-encoding: chunked\r\n");
    if (spec.app_connection) {
        // The app's own connection header stands.
    } else if (spec.close)
        out.append("connection: close\r\n");
    else if (spec.version == 10)
        out.append("connection: keep-alive\r\n");  // HTTP/1.0 closes unless told otherwise
    out.append("\r\n");
}

std::string server_response(int status, std::string_view body, const ResponseDefaults& defaults,
                            std::string_view extra_header_lines) {
    std::string out;
    out.reserve(160 + body.size());
    fmt::format_to(std::back_inserter(out), "HTTP/1.1 {} ", status);
    out.append(reason_phrase(status));
    out.append("\r\n");
    append_defaults(out, defaults);
    out.append("content-type: text/plain; charset=utf-8\r\n");
    fmt::format_to(std::back_inserter(out), "content-length: {}\r\n", body.size());
    out.append(extra_header_lines);
    out.append("connection: close\r\n\r\n");
    out.append(body);
    return out;
}

std::string error_response(int status, const ResponseDefaults& defaults, const char* detail,
                           std::string_view request_id) {
    std::string extra = status == 503   ? "retry-after: 1\r\n"
                        : status == 426 ? "sec-websocket-version: 13\r\n"
                                        : "";
    if (!request_id.empty() && !defaults.request_id_header.empty())
        append_line(extra, defaults.request_id_header, request_id);
    return server_response(
        status, detail ? std::string_view(detail) : asgi::errors::server_error(status).body,
        defaults, extra);
}

}  // namespace narwhal::server::http
