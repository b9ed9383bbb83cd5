#include "server/ws_transport.hpp"

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

}  // namespace narwhal::server
