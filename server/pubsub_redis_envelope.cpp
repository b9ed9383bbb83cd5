#include "server/pubsub_redis_envelope.hpp"

#include <random>

namespace narwhal::server::redis_envelope {

uint64_t random_origin() {
    std::random_device device;
    uint64_t origin = (static_cast<uint64_t>(device()) << 32) ^ device();
    return origin;
}

std::string encode(const asgi::Publication& p, uint64_t origin) {
    std::string out;
    out.reserve(header_size + p.data.size());
    out.append(magic);
    out += static_cast<char>(version);
    out += static_cast<char>(p.text ? flag_text : 0);
    for (int shift = 56; shift >= 0; shift -= 8)
        out += static_cast<char>((origin >> shift) & 0xff);
    out.append(p.data);
    return out;
}

Decoded decode(std::string_view message) {
    Decoded d;
    if (!message.starts_with(magic)) {
        d.data = message;
        d.text = valid_utf8(message);
        return d;
    }
    if (message.size() < header_size || static_cast<uint8_t>(message[4]) != version) {
        d.kind = Decoded::Kind::unknown;
        return d;
    }
    d.kind = Decoded::Kind::envelope;
    d.text = (static_cast<uint8_t>(message[5]) & flag_text) != 0;
    for (std::size_t i = 6; i < header_size; ++i)
        d.origin = (d.origin << 8) | static_cast<uint8_t>(message[i]);
    d.data = message.substr(header_size);
    return d;
}

bool valid_utf8(std::string_view s) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const auto* end = p + s.size();
    while (p < end) {
        unsigned char c = *p;
        if (c < 0x80) {
            ++p;
            continue;
        }
        std::size_t n;
        uint32_t cp;
        uint32_t min;
        if ((c & 0xe0) == 0xc0) {
            n = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false;  // a continuation byte first, or 0xf8-0xff
        }
        if (static_cast<std::size_t>(end - p) <= n)
            return false;
        for (std::size_t i = 1; i <= n; ++i) {
            if ((p[i] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        p += n + 1;
    }
    return true;
}

}  // namespace narwhal::server::redis_envelope
