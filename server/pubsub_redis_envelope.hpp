// What narwhal puts on a Redis channel for one publication: a small binary header, then
// the data. The header carries what a bare Redis message cannot: whether the data is
// text or bytes (a WebSocket frame's type), and which process published it, so the
// process that made it (and already delivered it to its own subscribers) skips the copy
// Redis sends back to it.
//
//   byte 0      0x00          no text message a person types starts with NUL
//   bytes 1-3   "NWP"         magic
//   byte 4      1             version; a receiver drops versions it does not know
//   byte 5      flags         bit 0: text (else bytes); other bits reserved, ignored
//   bytes 6-13  origin        random per process (big-endian), drawn after the fork
//   bytes 14-   data
//
// A message without the header (`redis-cli PUBLISH narwhal:news hello`) is delivered as
// a text frame when it is valid UTF-8, else as a binary one.
#pragma once

#include "asgi/pubsub.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace narwhal::server::redis_envelope {

inline constexpr std::string_view magic{"\0NWP", 4};
inline constexpr uint8_t version = 1;
inline constexpr uint8_t flag_text = 0x01;
inline constexpr std::size_t header_size = 14;

// A process's origin: random, so that processes on different hosts (equal pids) differ.
uint64_t random_origin();

// Header + `p.data`.
std::string encode(const asgi::Publication& p, uint64_t origin);

struct Decoded {
    enum class Kind {
        envelope,  // ours: `origin`, `text` and `data` are from the header
        plain,     // no header: `data` is the whole message, `text` if it is UTF-8
        unknown,   // our magic with a version (or a length) this process cannot read
    };
    Kind kind = Kind::plain;
    bool text = true;
    uint64_t origin = 0;
    std::string_view data;  // a view into the message
};
Decoded decode(std::string_view message);

// Strict UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF): what a
// WebSocket text frame must hold.
bool valid_utf8(std::string_view s);

}  // namespace narwhal::server::redis_envelope
