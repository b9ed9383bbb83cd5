// The PROXY protocol header (HAProxy's, versions 1 and 2) that a load balancer sends
// first on a connection to name the client it accepted. Pure parsing of bytes: the
// session (http_session.cpp) reads them off the socket and acts on the result.
//
// The parser is called with every byte received so far and says whether they hold a
// whole header (and how many bytes it is: what follows is the client's own stream, TLS
// or HTTP), cannot be one, or may still become one. It never looks past the header.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace narwhal::server::proxy_protocol {

enum class Version : uint8_t { v1, v2, any };

// v1's longest line, CRLF included (the specification's 107 bytes).
constexpr std::size_t v1_max_size = 107;
// v2's fixed part: the 12-byte signature, version/command, family, length.
constexpr std::size_t v2_fixed_size = 16;

struct Header {
    // False for v2 LOCAL (a health check of the proxy itself), v1 UNKNOWN and the
    // families we do not map (UNSPEC, UNIX): the socket's own addresses stay.
    bool has_addresses = false;
    std::string source_host;  // IPv4 or IPv6 text, no brackets
    uint16_t source_port = 0;
    std::string dest_host;
    uint16_t dest_port = 0;
};

struct Parse {
    enum class Status : uint8_t { incomplete, done, invalid };
    Status status = Status::incomplete;
    std::size_t size = 0;         // done: the header's bytes, TLVs included
    const char* error = nullptr;  // invalid: why, for the debug log
    Header header;
};

Parse parse(std::string_view bytes, Version version);

}  // namespace narwhal::server::proxy_protocol
