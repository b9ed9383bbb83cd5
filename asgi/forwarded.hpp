// What a trusted proxy's headers say about a request's client: X-Forwarded-For,
// X-Forwarded-Proto (uvicorn's pair) and RFC 7239 Forwarded. Pure parsing and the
// trust walk; which peers are proxies is the caller's (a TrustCheck).
//
// Rules:
// - The client is the rightmost hop that is not itself a trusted proxy (each proxy
//   appends the peer it saw, so everything right of that hop was written by proxies we
//   trust); when every hop is trusted, the leftmost. Its port is the one the hop names,
//   else 0 (uvicorn's).
// - X-Forwarded-* first, Forwarded only for what they do not say: uvicorn's users run
//   proxies that set X-Forwarded-For, and a proxy that manages one header passes the
//   other through from the client unchanged; preferring the one uvicorn reads keeps
//   every answer uvicorn gives.
// - A value that does not parse, an "unknown" or obfuscated hop where the client would
//   be, or a protocol other than http/https/ws/wss changes nothing: the socket's own
//   facts stay. Never an error for the client.
#pragma once

#include "asgi/events.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace narwhal::asgi {

class TrustCheck {
public:
    virtual bool trusts(std::string_view host) const = 0;

protected:
    ~TrustCheck() = default;
};

struct ForwardedFacts {
    std::optional<std::string> client_host;  // an IPv4 or IPv6 address (no brackets)
    int client_port = 0;
    std::optional<bool> secure;  // https/wss (true) or http/ws (false)

    bool any() const { return client_host || secure; }
};

// One hop of X-Forwarded-For or a Forwarded "for=" value (unquoted): "a.b.c.d",
// "a.b.c.d:port", "[v6]", "[v6]:port" or a bare IPv6 address. Empty host when the hop
// is not an address ("unknown", "_obfuscated", garbage).
struct ForwardedHop {
    std::string_view host;
    int port = 0;
};
ForwardedHop parse_forwarded_hop(std::string_view text);

// Looks only at the head's x-forwarded-for, x-forwarded-proto and forwarded fields.
ForwardedFacts read_forwarded(const RequestHead& head, const TrustCheck& trust);

}  // namespace narwhal::asgi
