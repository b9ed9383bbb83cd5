// One response on its way to the wire: the app's start and body commands become bytes.
// The head is written once, with the framing decided by decide_framing at that moment;
// each body message is then framed as the head said (counted, chunked, close-delimited,
// or dropped for HEAD, 1xx, 204 and 304). It only appends to strings: the session owns
// the socket and the write queue. One per response, reset with `= {}`.
#pragma once

#include "asgi/events.hpp"
#include "server/http/response_framing.hpp"
#include "server/http/response_head.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

namespace narwhal::server::http {

class ResponseEncoder {
public:
    // What the head's framing depends on besides the response itself.
    struct RequestSide {
        int version = 11;
        bool head_request = false;
        bool keep_alive = true;       // the request allows another after it
        bool body_done = true;        // the request body was read to its end
        bool draining = false;        // the server is shutting down
        std::string_view request_id;  // sent back (ResponseDefaults::request_id_header)
    };

    // The app's http.response.start, with the facts the boundary decided about its
    // headers (asgi::ResponseHeaders): nothing here reads the header list again.
    void start(int status, HeaderList&& headers, const asgi::HeaderFacts& facts);

    // Appends the head to `out`. `first_body_size` and `more`: the body message the head
    // travels with; a start alone (the app streams, or waits) is (0, true).
    // `body_in_out`: whether that body's bytes will be appended to `out` (not for a file).
    void append_head(std::string& out, const RequestSide& request, std::size_t first_body_size,
                     bool more, const ResponseDefaults& defaults, bool body_in_out = true);

    // Appends one body message, framed as the head said; `more == false` completes the
    // response. Returns the bytes that count against the send water marks: the body's
    // size, or 0 when no body goes on the wire.
    std::size_t append_body(std::string& out, std::string&& body, bool more);

    // A file of `size` bytes as the rest of the body (http.response.pathsend): what goes
    // before the file's bytes (a chunk size line, when a start sent alone made the
    // response chunked). Returns whether the file's bytes go on the wire at all.
    bool begin_file(std::string& out, uint64_t size);
    // After the file's bytes: closes the chunk and completes the response.
    void end_file(std::string& out, uint64_t size);
    bool started() const { return started_; }
    bool head_written() const { return head_written_; }
    bool done() const { return done_; }
    int status() const { return status_; }
    // Once the head is written: whether the connection may carry another request.
    bool keep_alive() const { return framing_.keep_alive; }

private:
    int status_ = 0;
    HeaderList headers_;
    asgi::HeaderFacts facts_;
    FramingDecision framing_;
    bool started_ = false;
    bool head_written_ = false;
    bool done_ = false;
};

}  // namespace narwhal::server::http
