// The narwhal.pubsub ASGI extension, in plain C++: its message types, the checks on
// them, and the publication that crosses from an interpreter to the server's fan-out.
// A publication is made once and shared, read-only, by every subscriber it goes to, in
// every I/O thread; the network side frames each subscriber's copy from the same bytes.
#pragma once

#include "asgi/ws_state.hpp"

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace narwhal::asgi {

// The key of scope["extensions"] and the prefix of the extension's message types.
inline constexpr std::string_view pubsub_extension = "narwhal.pubsub";
inline constexpr std::string_view pubsub_prefix = "narwhal.pubsub.";
inline constexpr std::string_view pubsub_subscribe = "narwhal.pubsub.subscribe";
inline constexpr std::string_view pubsub_unsubscribe = "narwhal.pubsub.unsubscribe";
inline constexpr std::string_view pubsub_publish = "narwhal.pubsub.publish";

struct Publication {
    std::string topic;
    std::string data;
    bool text = true;
};
using PublicationPtr = std::shared_ptr<const Publication>;

// What a scope may send of the extension. publish: an http scope at any time, a
// websocket scope once it has accepted (also after the close: a handler may announce
// that its socket left). subscribe: an accepted, open
// WebSocket. unsubscribe: one that was accepted (after its close it is a no-op: a closed
// socket has left every topic). `ws`: the WebSocket scope's state; nullptr for http.
// Returns the error to raise; nullopt when the message may be sent.
std::optional<std::string> check_pubsub_message(std::string_view type, const WebSocketState* ws);

}  // namespace narwhal::asgi
