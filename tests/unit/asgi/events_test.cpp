#include "asgi/events.hpp"

#include "catch.hpp"

#include <string>
#include <string_view>
#include <vector>

using namespace std::string_literals;
using narwhal::asgi::Command;
using narwhal::asgi::Event;
using narwhal::asgi::RequestHead;

TEST_CASE("events: add and add_lower return spans over the stored bytes", "[asgi][events]") {
    RequestHead head;
    auto a = head.add("GET");
    auto b = head.add_lower("X-Mixed-CASE_09!");
    auto c = head.add("");
    auto d = head.add("Value With Caps");
    CHECK(head.view(a) == "GET");
    CHECK(head.view(b) == "x-mixed-case_09!");
    CHECK(head.view(c).empty());
    CHECK(head.view(d) == "Value With Caps");
    // Consecutive: spans do not overlap.
    CHECK(b.offset == a.offset + a.size);
    CHECK(d.offset == b.offset + b.size);
}

TEST_CASE("events: add_lower lowercases ASCII letters only", "[asgi][events]") {
    RequestHead head;
    auto s = head.add_lower("AZaz@[`{\xc3\x89\xff");
    CHECK(head.view(s) == "azaz@[`{\xc3\x89\xff");
}

TEST_CASE("events: add_field lowercases the name and keeps the value", "[asgi][events]") {
    RequestHead head;
    head.add_field("Content-Type", "Text/HTML; Charset=UTF-8");
    head.add_field("X-EMPTY", "");
    head.add_field("x-bin", "a\0B"s);
    const auto& fields = head.fields();
    REQUIRE(fields.size() == 3);
    CHECK(head.view(fields[0].name) == "content-type");
    CHECK(head.view(fields[0].value) == "Text/HTML; Charset=UTF-8");
    CHECK(head.view(fields[1].name) == "x-empty");
    CHECK(head.view(fields[1].value).empty());
    CHECK(head.view(fields[2].name) == "x-bin");
    CHECK(head.view(fields[2].value) == "a\0B"s);
}

TEST_CASE("events: spans stay valid after many adds (arena growth)", "[asgi][events]") {
    RequestHead head;
    head.method = head.add("PROPFIND");
    head.target = head.add("/some/Path?Q=1");
    const std::string big(5000, 'V');
    constexpr int n = 2000;
    for (int i = 0; i < n; ++i) {
        std::string value = "Value-" + std::to_string(i);
        if (i % 100 == 0)
            value += big;  // forces reallocations of the arena
        head.add_field("X-Header-" + std::to_string(i), value);
    }
    CHECK(head.method_view() == "PROPFIND");
    CHECK(head.target_view() == "/some/Path?Q=1");
    REQUIRE(head.fields().size() == n);
    for (int i = 0; i < n; ++i) {
        INFO("field " << i);
        std::string value = "Value-" + std::to_string(i);
        if (i % 100 == 0)
            value += big;
        REQUIRE(head.view(head.fields()[i].name) == "x-header-" + std::to_string(i));
        REQUIRE(head.view(head.fields()[i].value) == value);
    }
}

TEST_CASE("events: clear empties the head for reuse", "[asgi][events]") {
    RequestHead head;
    head.add_field("A", "1");
    head.add_field("B", "2");
    head.clear();
    CHECK(head.fields().empty());
    auto s = head.add("fresh");
    CHECK(s.offset == 0);
    head.add_field("C", "3");
    REQUIRE(head.fields().size() == 1);
    CHECK(head.view(head.fields()[0].name) == "c");
    CHECK(head.view(s) == "fresh");
}

TEST_CASE("events: defaults", "[asgi][events]") {
    RequestHead head;
    CHECK(head.version == 11);
    CHECK(head.keep_alive);
    CHECK_FALSE(head.expect_continue);
    CHECK_FALSE(head.head_request);
    CHECK(head.method_view().empty());
    CHECK(head.target_view().empty());

    Event ev;
    CHECK(ev.kind == Event::Kind::request);
    CHECK_FALSE(ev.more_body);
    CHECK(ev.head == nullptr);

    Command cmd;
    CHECK(cmd.kind == Command::Kind::body);
    CHECK(cmd.request == 0);
    CHECK_FALSE(cmd.more);
    // A command built by hand declares nothing about its headers unless it says so.
    CHECK_FALSE(cmd.facts.close);
    CHECK_FALSE(cmd.facts.connection);
    CHECK_FALSE(cmd.facts.content_length.has_value());
}

TEST_CASE("events: Peer::client_label names the client as access lines do", "[asgi][events]") {
    narwhal::asgi::Peer tcp;
    tcp.client_host = "127.0.0.1";
    tcp.client_port = 54321;
    CHECK(tcp.client_label() == "127.0.0.1:54321");

    narwhal::asgi::Peer v6;
    v6.client_host = "::1";
    v6.client_port = 8;
    CHECK(v6.client_label() == "::1:8");

    narwhal::asgi::Peer unix_socket;  // no client address on a Unix socket
    unix_socket.server_host = "/run/narwhal.sock";
    CHECK(unix_socket.client_label() == "unix");
}
