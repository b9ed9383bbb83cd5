// The ASGI WebSocket rules for one connection, in plain C++: before the handshake the
// app may accept, close (403) or send an HTTP response instead (the denial extension);
// once accepted it may send and close; after a close nothing more. Error wording
// follows uvicorn.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace narwhal::asgi {

class WebSocketState {
public:
    enum class Phase : uint8_t { connecting, denial, open, closed };

    Phase phase() const { return phase_; }

    // Checks a message the app sends and moves the state on. Returns the error to raise.
    std::optional<std::string> on_send(std::string_view type, bool more_body = false);

    // The peer (or the server) closed the socket: sends are errors from now on.
    void on_closed() { phase_ = Phase::closed; }

private:
    Phase phase_ = Phase::connecting;
};

}  // namespace narwhal::asgi
