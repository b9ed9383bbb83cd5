#include "asgi/ws_state.hpp"

#include "asgi/errors.hpp"

#include <fmt/format.h>

namespace narwhal::asgi {

std::optional<std::string> WebSocketState::on_send(std::string_view type) {
    switch (phase_) {
    case Phase::connecting:
        if (type == "websocket.accept") {
            phase_ = Phase::open;
            accepted_ = true;
            return std::nullopt;
        }
        if (type == "websocket.close") {
            phase_ = Phase::closed;
            return std::nullopt;
        }
        if (type == "websocket.http.response.start")
            return std::nullopt;  // on_denial_start moves on
        return fmt::format("Expected ASGI message 'websocket.accept', 'websocket.close', or "
                           "'websocket.http.response.start' but got '{}'.",
                           type);
    case Phase::denial:
        if (type == "websocket.http.response.body")
            return std::nullopt;  // on_denial_body moves on
        return fmt::format("Expected ASGI message 'websocket.http.response.body' but got '{}'.",
                           type);
    case Phase::open:
        if (type == "websocket.send")
            return std::nullopt;
        if (type == "websocket.close") {
            phase_ = Phase::closed;
            return std::nullopt;
        }
        return fmt::format("Expected ASGI message 'websocket.send' or 'websocket.close', but got "
                           "'{}'.",
                           type);
    case Phase::closed:
        return fmt::format("Unexpected ASGI message '{}', after sending 'websocket.close' or "
                           "response already completed.",
                           type);
    }
    return std::nullopt;
}

std::optional<std::string> WebSocketState::on_denial_start(int status,
                                                           std::optional<uint64_t> content_length) {
    // 1xx would leave the client waiting for a final answer (101: for a handshake).
    if (status < 200 || status > 599)
        return fmt::format(fmt::runtime(errors::denial_status_invalid), status);
    denial_.on_start(status, content_length);
    phase_ = Phase::denial;
    return std::nullopt;
}

std::optional<std::string> WebSocketState::on_denial_body(uint64_t n, bool more) {
    if (auto err = denial_.on_body(n, more))
        return err;
    if (!more)
        phase_ = Phase::closed;
    return std::nullopt;
}

}  // namespace narwhal::asgi
