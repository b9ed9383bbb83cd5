#include "asgi/pubsub.hpp"

#include "asgi/errors.hpp"

#include <fmt/format.h>

namespace narwhal::asgi {

std::optional<std::string> check_pubsub_message(std::string_view type, bool websocket,
                                                bool accepted) {
    if (type == pubsub_publish)
        return std::nullopt;  // from any handler, at any time: it needs no socket
    if (type != pubsub_subscribe && type != pubsub_unsubscribe)
        return fmt::format(errors::pubsub_unknown_type, type);
    if (!websocket || !accepted)
        return fmt::format(errors::pubsub_needs_socket, type);
    return std::nullopt;
}

}  // namespace narwhal::asgi
