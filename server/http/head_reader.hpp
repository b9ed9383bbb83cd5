// From buffered bytes to a request the session can act on: the strict scan
// (head_scanner), Beast's parse into an asgi::RequestHead (request_parser), the WebSocket
// upgrade check (ws_upgrade) and the body's framing (BodyReader). No socket, no state
// between calls: the session calls it with its whole buffer each time bytes arrive while
// it waits for a head.
#pragma once

#include "asgi/events.hpp"
#include "server/http/body_reader.hpp"
#include "server/http/head_scanner.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

namespace narwhal::server::http {

struct HeadRead {
    enum class Outcome {
        incomplete,  // no whole head yet, nothing wrong so far: wait for more bytes
        invalid,     // answer `status` and close
        websocket,   // a valid WebSocket upgrade request: `head`
        request,     // an HTTP request: `head`, its body framed by `body`
    };
    Outcome outcome = Outcome::incomplete;
    // Bytes at the front of the buffer the head took (leading empty lines included);
    // they are done with, whatever the outcome but incomplete.
    std::size_t consumed = 0;
    int status = 0;           // invalid: 400, 405, 413, 414, 426, 431, 501 or 505
    const char* reason = "";  // invalid: a short static text for the debug log
    std::unique_ptr<asgi::RequestHead> head;
};

// `body` is reset for the request's body (none, Content-Length or chunked) when the
// outcome is `request`. `body_limit` caps a request body (--limit-request-body): a larger
// Content-Length is 413 here, a chunked body over it is found by the BodyReader.
// Without `websocket` (--ws none) an upgrade request is an ordinary HTTP request, as
// uvicorn serves it when it has no WebSocket implementation.
HeadRead read_request_head(std::string_view buffered, const HeadLimits& limits, uint64_t body_limit,
                           BodyReader& body, bool websocket = true);

}  // namespace narwhal::server::http
