#include "server/ws_transport.hpp"

#include <boost/endian/conversion.hpp>

namespace narwhal::server {

void drop_library_server_line(std::string& head) {
    // Beast serialises the field with its canonical name, as "Server: <value>\r\n".
    constexpr std::string_view line = "\r\nServer: " BOOST_BEAST_VERSION_STRING "\r\n";
    const auto end = head.find("\r\n\r\n");
    const auto at = head.find(line);
    if (at == std::string::npos || end == std::string::npos || at > end)
        return;
    head.erase(at + 2, line.size() - 2);  // keep the CRLF that ends the line before it
}

bool accepts_deflate(std::string_view head) {
    // Beast writes the field with its canonical name; our decorator adds no other.
    constexpr std::string_view name = "\r\nSec-WebSocket-Extensions:";
    const auto end = head.find("\r\n\r\n");
    const auto at = head.find(name);
    if (at == std::string_view::npos || at > end)
        return false;
    const auto eol = head.find("\r\n", at + name.size());
    return head.substr(at, eol - at).find("permessage-deflate") != std::string_view::npos;
}

std::size_t encode_frame_head(uint8_t* out, bool text, std::size_t size) {
    out[0] = static_cast<uint8_t>(0x80 | (text ? 0x1 : 0x2));  // FIN, opcode
    if (size < 126) {
        out[1] = static_cast<uint8_t>(size);
        return 2;
    }
    if (size <= 0xFFFF) {
        out[1] = 126;
        boost::endian::store_big_u16(out + 2, static_cast<uint16_t>(size));
        return 4;
    }
    out[1] = 127;
    boost::endian::store_big_u64(out + 2, static_cast<uint64_t>(size));
    return 10;
}

}  // namespace narwhal::server
