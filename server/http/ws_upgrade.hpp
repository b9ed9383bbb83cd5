// Recognising and validating a WebSocket upgrade request (RFC 6455 4.2.1) before the
// app sees it.
#pragma once

#include "asgi/events.hpp"

namespace narwhal::server::http {

struct UpgradeCheck {
    bool websocket = false;  // the request asks for a WebSocket
    int status = 0;          // when it does but is invalid: 400, 405 or 426
    // When invalid: what is wrong, in words the client is told (the response body).
    const char* reason = "";
};

// A request is a WebSocket upgrade when it has "Upgrade: websocket". Then, checked in this
// order so that a request with several faults always gets the same answer:
//   a GET (else 405),
//   HTTP/1.1 with "Connection: upgrade" (else 400),
//   Sec-WebSocket-Version 13, exactly (else 426, answered with "Sec-WebSocket-Version: 13":
//     RFC 6455 4.2.2 asks for it, and it is the one fault the client can act on), and
//   exactly one Sec-WebSocket-Key of 16 bytes in base64 (else 400).
// Connection and Upgrade may be split over several header lines: they are lists
// (RFC 9110 5.3), read as one.
UpgradeCheck check_websocket_upgrade(const asgi::RequestHead& head);

}  // namespace narwhal::server::http
