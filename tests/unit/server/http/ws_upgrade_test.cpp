#include "server/http/ws_upgrade.hpp"

#include "asgi/events.hpp"

#include "catch.hpp"

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

using narwhal::asgi::RequestHead;
using narwhal::server::http::check_websocket_upgrade;
using narwhal::server::http::UpgradeCheck;

namespace {

using Fields = std::vector<std::pair<std::string_view, std::string_view>>;

constexpr std::string_view key = "dGhlIHNhbXBsZSBub25jZQ==";  // RFC 6455 1.3

// A head as RequestParser fills it: the method as sent, the fields in wire order with
// their names lowercased and their values as sent (Beast has trimmed the whitespace).
RequestHead head(std::string_view method, int version, const Fields& fields) {
    RequestHead h;
    h.method = h.add(method);
    h.target = h.add("/chat");
    h.version = version;
    for (const auto& [name, value] : fields)
        h.add_field(name, value);
    return h;
}

// What a browser sends, in a browser's spelling.
Fields valid_fields() {
    return {{"Host", "example.com"},
            {"Upgrade", "websocket"},
            {"Connection", "Upgrade"},
            {"Sec-WebSocket-Key", key},
            {"Sec-WebSocket-Version", "13"}};
}

// valid_fields() with the field `name` removed (when `value` is empty) or set to `value`.
Fields with(std::string_view name, std::string_view value) {
    Fields out;
    for (auto f : valid_fields()) {
        if (f.first != name)
            out.push_back(f);
        else if (!value.empty())
            out.emplace_back(name, value);
    }
    return out;
}

UpgradeCheck check(std::string_view method, int version, const Fields& fields) {
    return check_websocket_upgrade(head(method, version, fields));
}

void require_refused(const UpgradeCheck& r, int status, std::string_view reason) {
    CHECK(r.websocket);
    CHECK(r.status == status);
    CHECK(std::string_view(r.reason) == reason);
}

const std::string_view bad_method = "A WebSocket upgrade must be a GET request.";
const std::string_view bad_connection =
    "A WebSocket upgrade needs HTTP/1.1 and \"Connection: Upgrade\".";
const std::string_view bad_key =
    "A WebSocket upgrade needs one Sec-WebSocket-Key of 16 bytes in base64.";
const std::string_view bad_version = "Upgrade required: this server speaks WebSocket version 13.";

}  // namespace

TEST_CASE("ws_upgrade: a valid handshake request", "[server][http][ws_upgrade]") {
    auto r = check("GET", 11, valid_fields());
    CHECK(r.websocket);
    CHECK(r.status == 0);
}

TEST_CASE("ws_upgrade: requests that are not upgrades are left alone",
          "[server][http][ws_upgrade]") {
    SECTION("plain GET") {
        auto r = check("GET", 11, {{"Host", "example.com"}});
        CHECK_FALSE(r.websocket);
        CHECK(r.status == 0);
    }
    SECTION("every other WebSocket field, but no Upgrade") {
        auto r = check("GET", 11, with("Upgrade", ""));
        CHECK_FALSE(r.websocket);
        CHECK(r.status == 0);
    }
    SECTION("an upgrade to another protocol") {
        auto r = check("GET", 11, with("Upgrade", "h2c"));
        CHECK_FALSE(r.websocket);
        CHECK(r.status == 0);
    }
    SECTION("a POST without Upgrade is not refused here") {
        auto r = check("POST", 11, {{"Host", "example.com"}, {"Connection", "upgrade"}});
        CHECK_FALSE(r.websocket);
        CHECK(r.status == 0);
    }
    SECTION("a token that only contains the word") {
        auto r = check("GET", 11, with("Upgrade", "websocketx"));
        CHECK_FALSE(r.websocket);
    }
}

TEST_CASE("ws_upgrade: token lists with several values and mixed case",
          "[server][http][ws_upgrade]") {
    SECTION("Upgrade lists websocket among others") {
        CHECK(check("GET", 11, with("Upgrade", "h2c, WebSocket")).status == 0);
        CHECK(check("GET", 11, with("Upgrade", "WEBSOCKET")).websocket);
    }
    SECTION("Connection lists upgrade among others, in any case") {
        for (std::string_view connection : {"upgrade", "UPGRADE", "keep-alive, Upgrade",
                                            "Upgrade,keep-alive", "keep-alive , upGrade , close"}) {
            INFO(connection);
            auto r = check("GET", 11, with("Connection", connection));
            CHECK(r.websocket);
            CHECK(r.status == 0);
        }
    }
    SECTION("Connection and Upgrade split over several lines are one list (RFC 9110 5.3)") {
        Fields fields = with("Connection", "keep-alive");
        fields.emplace_back("Connection", "Upgrade");
        CHECK(check("GET", 11, fields).status == 0);
        fields = with("Upgrade", "h2c");
        fields.emplace_back("Upgrade", "websocket");
        auto r = check("GET", 11, fields);
        CHECK(r.websocket);
        CHECK(r.status == 0);
    }
    SECTION("Connection without the upgrade token") {
        for (std::string_view connection : {"keep-alive", "upgrades", "keep-alive, close"}) {
            INFO(connection);
            require_refused(check("GET", 11, with("Connection", connection)), 400, bad_connection);
        }
    }
}

TEST_CASE("ws_upgrade: 405 for any method but GET", "[server][http][ws_upgrade]") {
    for (std::string_view method : {"POST", "PUT", "HEAD", "OPTIONS", "get"}) {
        INFO(method);
        require_refused(check(method, 11, valid_fields()), 405, bad_method);
    }
    // The method is judged first: the rest of a POST need not be valid.
    require_refused(check("POST", 10, with("Sec-WebSocket-Key", "")), 405, bad_method);
}

TEST_CASE("ws_upgrade: 400 without HTTP/1.1 and Connection: upgrade",
          "[server][http][ws_upgrade]") {
    SECTION("HTTP/1.0") { require_refused(check("GET", 10, valid_fields()), 400, bad_connection); }
    SECTION("no Connection field") {
        require_refused(check("GET", 11, with("Connection", "")), 400, bad_connection);
    }
    SECTION("judged before the key and the version") {
        Fields fields = with("Connection", "close");
        fields.emplace_back("sec-websocket-key", "x");
        require_refused(check("GET", 11, fields), 400, bad_connection);
    }
}

TEST_CASE("ws_upgrade: 400 for a missing, repeated or malformed key",
          "[server][http][ws_upgrade]") {
    SECTION("missing") {
        require_refused(check("GET", 11, with("Sec-WebSocket-Key", "")), 400, bad_key);
    }
    SECTION("repeated, even with the same valid value") {
        Fields fields = valid_fields();
        fields.emplace_back("Sec-WebSocket-Key", key);
        require_refused(check("GET", 11, fields), 400, bad_key);
    }
    SECTION("not 16 bytes of base64") {
        for (std::string_view k : {
                 "dGhlIHNhbXBsZQ==",           // 10 bytes
                 "dGhlIHNhbXBsZSBub25jZSE=",   // 17 bytes: 24 characters, one "="
                 "dGhlIHNhbXBsZSBub25jZQ",     // no padding
                 "dGhlIHNhbXBsZSBub25jZQ===",  // 25 characters
                 "dGhlIHNhbXBsZSBub25jZ-==",   // base64url alphabet
                 "dGhlIHNhbXBsZSBub2 jZQ==",   // a space inside
                 "not a base64 key!!!!!!==",   // 24 characters, wrong alphabet
             }) {
            INFO(k);
            require_refused(check("GET", 11, with("Sec-WebSocket-Key", k)), 400, bad_key);
        }
    }
    SECTION("judged after the version: a bad key with another version is 426") {
        for (std::string_view version : {"8", ""}) {
            INFO(version);
            Fields fields = {{"Host", "example.com"},
                             {"Upgrade", "websocket"},
                             {"Connection", "Upgrade"},
                             {"Sec-WebSocket-Key", "short=="}};
            if (!version.empty())
                fields.emplace_back("Sec-WebSocket-Version", version);
            require_refused(check("GET", 11, fields), 426, bad_version);
            // The same answer whatever the order of the fields, or with no key at all.
            std::rotate(fields.begin(), fields.begin() + 3, fields.end());
            require_refused(check("GET", 11, fields), 426, bad_version);
            fields.erase(std::find_if(fields.begin(), fields.end(), [](const auto& f) {
                return f.first == "Sec-WebSocket-Key";
            }));
            require_refused(check("GET", 11, fields), 426, bad_version);
        }
    }
    SECTION("every base64 character is accepted") {
        for (std::string_view k :
             {"ABCDEFGHIJKLMNOPQRSTUV==", "WXYZabcdefghijklmnopqr==", "stuvwxyz0123456789+/AA=="}) {
            INFO(k);
            CHECK(check("GET", 11, with("Sec-WebSocket-Key", k)).status == 0);
        }
    }
}

TEST_CASE("ws_upgrade: 426 for any version but 13", "[server][http][ws_upgrade]") {
    require_refused(check("GET", 11, with("Sec-WebSocket-Version", "")), 426, bad_version);
    for (std::string_view version : {"8", "12", "14", "013", "13, 8"}) {
        INFO(version);
        require_refused(check("GET", 11, with("Sec-WebSocket-Version", version)), 426, bad_version);
    }
    Fields twice = valid_fields();
    twice.emplace_back("Sec-WebSocket-Version", "8");
    require_refused(check("GET", 11, twice), 426, bad_version);
}
