#include "asgi/errors.hpp"

#include <fmt/format.h>

#include <array>

namespace narwhal::asgi::errors {

std::string expected_message(std::string_view expected, std::string_view got) {
    return fmt::format("Expected ASGI message '{}', but got '{}'.", expected, got);
}

std::string unexpected_after_complete(std::string_view got) {
    return fmt::format("Unexpected ASGI message '{}' sent, after response already completed.", got);
}

namespace {
constexpr std::array server_errors{
    ServerError{400, "malformed request", "Invalid HTTP request received."},
    ServerError{405, "method not allowed", "Method not allowed."},
    ServerError{408, "request timeout", "Request timeout."},
    ServerError{413, "request body too large", "Request body too large."},
    ServerError{414, "request target too long", "Request-URI too long."},
    ServerError{426, "upgrade required",
                "Upgrade required: this server speaks WebSocket version 13."},
    ServerError{431, "request header fields too large", "Request header fields too large."},
    ServerError{501, "not implemented", "Unsupported transfer coding."},
    ServerError{503, "service unavailable", "Service unavailable."},
    ServerError{504, "application deadline passed",
                "Gateway timeout: the application did not answer in time."},
    ServerError{505, "HTTP version not supported", "HTTP version not supported."},
};
constexpr ServerError unknown_error{0, "error", "Error."};
}  // namespace

const ServerError& server_error(int status) {
    for (const auto& e : server_errors)
        if (e.status == status)
            return e;
    return unknown_error;
}

std::string pathsend_not_absolute(std::string_view path) {
    return fmt::format("ASGI 'http.response.pathsend' path must be absolute, got '{}'.", path);
}

std::string pathsend_not_regular_file(std::string_view path) {
    return fmt::format("ASGI 'http.response.pathsend' path is not a regular file: '{}'.", path);
}

}  // namespace narwhal::asgi::errors
