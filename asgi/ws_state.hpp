// The ASGI WebSocket rules for one connection, in plain C++: before the handshake the
// app may accept, close (403) or send an HTTP response instead (the denial extension);
// once accepted it may send and close; after a close nothing more. The denial response
// follows the HTTP response's rules (ResponseState: Content-Length accounting). Error
// wording follows uvicorn.
#pragma once

#include "asgi/response_state.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace narwhal::asgi {

class WebSocketState {
public:
    enum class Phase : uint8_t { connecting, denial, open, closed };

    Phase phase() const { return phase_; }

    // Checks the order of a message the app sends and, for accept, send and close, moves
    // the state on. The denial messages move it on through on_denial_start/_body, once
    // their contents are checked too. Returns the error to raise.
    std::optional<std::string> on_send(std::string_view type);

    // websocket.http.response.start, after on_send: a status an HTTP client can take as
    // the final answer to its upgrade (200 to 599) and the app's declared Content-Length.
    std::optional<std::string> on_denial_start(int status, std::optional<uint64_t> content_length);
    // websocket.http.response.body of `n` bytes, after on_send; the last one completes.
    std::optional<std::string> on_denial_body(uint64_t n, bool more);
    // The denial response so far (its status, declared length and bytes sent).
    const ResponseState& denial() const { return denial_; }

    // The peer (or the server) closed the socket: sends are errors from now on.
    void on_closed() { phase_ = Phase::closed; }
    // The handshake was accepted (whatever happened since).
    bool accepted() const { return accepted_; }

private:
    Phase phase_ = Phase::connecting;
    bool accepted_ = false;
    ResponseState denial_;
};

}  // namespace narwhal::asgi
