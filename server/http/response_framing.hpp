// How a response is delimited on the wire, and whether the connection survives it,
// decided once when its head is written (RFC 9112 6.3, 9.3). A pure function of what is
// known at that moment, so every branch is unit-tested without a socket.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

namespace narwhal::server::http {

enum class Framing { none, content_length, chunked };

struct FramingInput {
    int status = 200;
    bool head_request = false;
    std::optional<uint64_t> app_length;  // the app's declared Content-Length
    std::size_t first_body_size = 0;     // the body message the head travels with
    bool more_body = false;              // more body messages follow (or the head goes alone)
    int version = 11;                    // the request's HTTP version: 10 or 11
    bool request_keep_alive = true;      // the request allows another after it
    bool request_body_done = true;       // the request body was read to its end
    bool draining = false;               // the server is shutting down
    bool app_close = false;              // the app sent "connection: close"
};

struct FramingDecision {
    Framing framing = Framing::none;
    // With content_length framing: the length; the server writes the header only when
    // the app did not (`add_length_header`).
    uint64_t content_length = 0;
    bool add_length_header = false;
    // Whether body bytes go on the wire at all (not for HEAD, 1xx, 204, 304).
    bool body_allowed = true;
    // Whether the connection may carry another request after this response.
    bool keep_alive = true;
};

FramingDecision decide_framing(const FramingInput& in) noexcept;

}  // namespace narwhal::server::http
