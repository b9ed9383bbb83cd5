// The check of an app's response headers (http.response.start, websocket.accept, the
// websocket denial response), run once where the headers enter from the app, one header
// at a time so the boundary needs no intermediate list:
//
//     asgi::ResponseHeaders check;
//     for (each [name, value] the app sent)
//         if (auto error = check.add(name, value))
//             raise RuntimeError(*error);  // nothing is sent
//     check.finish(cmd);                   // headers and HeaderFacts into the command
//
// It keeps each header with its name lowercased, and decides what the headers mean for
// the response's framing (HeaderFacts: declared Content-Length, "connection: close"), so
// the network layer trusts the command instead of parsing the headers again.
#pragma once

#include "asgi/events.hpp"

#include <cstdint>
#include <optional>
#include <string_view>

namespace narwhal::asgi {

class ResponseHeaders {
public:
    // Checks one header and keeps it. The name must be an RFC 9110 token (it is kept
    // lowercased); the value may not hold CR, LF or NUL (they would split the response).
    // A Content-Length must be a non-negative decimal integer, the same in every
    // Content-Length header (a repeat of the same value is not kept: it would go out
    // twice, which strict clients refuse). Returns the error to raise in the app; the header is not
    // kept then, and the response must not be sent.
    std::optional<std::string_view> add(std::string_view name, std::string_view value);

    // Moves the headers kept so far and the facts decided about them into `cmd`
    // (cmd.headers and cmd.facts are replaced).
    void finish(Command& cmd);

    const HeaderFacts& facts() const { return facts_; }
    const HeaderList& headers() const { return headers_; }

private:
    HeaderList headers_;
    HeaderFacts facts_;
};

// A Content-Length field value: 1*DIGIT with optional whitespace around it, within
// uint64_t. Anything else (a sign, a list, an empty value) is nullopt.
std::optional<uint64_t> parse_content_length(std::string_view value);

// Whether a Connection field value lists the "close" option (case-insensitive, as one
// element of a comma-separated list).
bool lists_close(std::string_view connection_value);

}  // namespace narwhal::asgi
