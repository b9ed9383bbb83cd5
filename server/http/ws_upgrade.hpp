// Recognising and validating a WebSocket upgrade request (RFC 6455 4.2.1) before the
// app sees it.
#pragma once

#include "asgi/events.hpp"

namespace narwhal::server::http {

struct UpgradeCheck {
    bool websocket = false;  // the request asks for a WebSocket
    int status = 0;          // when it does but is invalid: 400, 405 or 426
    const char* reason = "";
};

// A request is a WebSocket upgrade when it has "Upgrade: websocket". Then it must be a
// GET (else 405), HTTP/1.1 with "Connection: upgrade" and a 16-byte base64
// Sec-WebSocket-Key (else 400), and Sec-WebSocket-Version 13 (else 426, answered with
// "Sec-WebSocket-Version: 13").
UpgradeCheck check_websocket_upgrade(const asgi::RequestHead& head);

}  // namespace narwhal::server::http
