#include "server/http/ws_upgrade.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/rfc7230.hpp>

namespace narwhal::server::http {

namespace {
bool has_token(std::string_view list, std::string_view token) {
    for (auto t : boost::beast::http::token_list{list})
        if (boost::beast::iequals(t, token))
            return true;
    return false;
}

bool base64_16_bytes(std::string_view key) {
    // 16 bytes in base64: 22 characters and "==".
    if (key.size() != 24 || key.substr(22) != "==")
        return false;
    for (char c : key.substr(0, 22))
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/'))
            return false;
    return true;
}
}  // namespace

UpgradeCheck check_websocket_upgrade(const asgi::RequestHead& head) {
    // Every request passes here and almost none is an upgrade: find that out first, with
    // one name comparison per field, and read the other fields only for an upgrade.
    bool upgrade = false;
    for (const auto& f : head.fields())
        if (head.view(f.name) == "upgrade" && has_token(head.view(f.value), "websocket"))
            upgrade = true;
    if (!upgrade)
        return {};
    bool connection_upgrade = false;
    std::string_view version, key;
    int versions = 0, keys = 0;
    for (const auto& f : head.fields()) {
        auto name = head.view(f.name);
        auto value = head.view(f.value);
        if (name == "connection")
            connection_upgrade = connection_upgrade || has_token(value, "upgrade");
        else if (name == "sec-websocket-version") {
            version = value;
            ++versions;
        } else if (name == "sec-websocket-key") {
            key = value;
            ++keys;
        }
    }
    UpgradeCheck r;
    r.websocket = true;
    if (head.method_view() != "GET")
        return {true, 405, "A WebSocket upgrade must be a GET request."};
    if (head.version != 11 || !connection_upgrade)
        return {true, 400, "A WebSocket upgrade needs HTTP/1.1 and \"Connection: Upgrade\"."};
    if (versions != 1 || version != "13")
        return {true, 426, "Upgrade required: this server speaks WebSocket version 13."};
    if (keys != 1 || !base64_16_bytes(key))
        return {true, 400,
                "A WebSocket upgrade needs one Sec-WebSocket-Key of 16 bytes in base64."};
    return r;
}

}  // namespace narwhal::server::http
