#include "asgi/pubsub.hpp"

#include "asgi/errors.hpp"

#include <fmt/format.h>

namespace narwhal::asgi {

std::optional<std::string> check_pubsub_message(std::string_view type, const WebSocketState* ws) {
    if (type == pubsub_publish) {
        // A WebSocket handler publishes once it has accepted (also after the close): a
        // connection it has not accepted yet may still be refused, and publishing for it
        // is most likely a mistake in the handler's order.
        if (ws && !ws->accepted())
            return fmt::format(fmt::runtime(errors::pubsub_publish_before_accept), type);
        return std::nullopt;
    }
    using Phase = WebSocketState::Phase;
    if (type == pubsub_subscribe) {
        if (!ws || ws->phase() != Phase::open)
            return fmt::format(fmt::runtime(errors::pubsub_needs_socket), type);
        return std::nullopt;
    }
    if (type == pubsub_unsubscribe) {
        if (!ws ||
            (ws->phase() != Phase::open && !(ws->phase() == Phase::closed && ws->accepted())))
            return fmt::format(fmt::runtime(errors::pubsub_needs_socket), type);
        return std::nullopt;
    }
    return fmt::format(fmt::runtime(errors::pubsub_unknown_type), type);
}

}  // namespace narwhal::asgi
