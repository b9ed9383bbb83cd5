#include "server/http/response_framing.hpp"

#include "asgi/response_state.hpp"

namespace narwhal::server::http {

FramingDecision decide_framing(const FramingInput& in) noexcept {
    FramingDecision d;
    const bool status_body = asgi::status_has_body(in.status);
    d.body_allowed = status_body && !in.head_request;
    bool close_delimited = false;
    if (!status_body) {
        d.framing = Framing::none;  // 1xx, 204, 304: no content, whatever the app declared
    } else if (in.app_length) {
        d.framing = Framing::content_length;  // the app's own header stands
        d.content_length = *in.app_length;
    } else if (!in.more_body) {
        // One body message: its length is known, and the response leaves in one write.
        // For HEAD it is the length a GET would have had.
        d.framing = Framing::content_length;
        d.content_length = in.first_body_size;
        d.add_length_header = true;
    } else if (in.head_request) {
        d.framing = Framing::none;  // streamed, length unknown, and no body goes out anyway
    } else if (in.version == 11) {
        d.framing = Framing::chunked;
    } else {
        d.framing = Framing::none;  // HTTP/1.0 has no chunked coding: the close delimits
        close_delimited = true;
    }
    // A request body the app did not read to its end cannot be skipped safely: the next
    // request would start somewhere inside it.
    d.keep_alive = in.request_keep_alive && !in.app_close && !close_delimited &&
                   in.request_body_done && !in.draining;
    return d;
}

}  // namespace narwhal::server::http
