#include "asgi/ws_state.hpp"

#include <fmt/format.h>

namespace narwhal::asgi {

std::optional<std::string> WebSocketState::on_send(std::string_view type, bool more_body) {
    switch (phase_) {
    case Phase::connecting:
        if (type == "websocket.accept") {
            phase_ = Phase::open;
            return std::nullopt;
        }
        if (type == "websocket.close") {
            phase_ = Phase::closed;
            return std::nullopt;
        }
        if (type == "websocket.http.response.start") {
            phase_ = Phase::denial;
            return std::nullopt;
        }
        return fmt::format("Expected ASGI message 'websocket.accept', 'websocket.close', or "
                           "'websocket.http.response.start' but got '{}'.",
                           type);
    case Phase::denial:
        if (type == "websocket.http.response.body") {
            if (!more_body)
                phase_ = Phase::closed;
            return std::nullopt;
        }
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

}  // namespace narwhal::asgi
