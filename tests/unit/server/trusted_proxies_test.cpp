#include "server/trusted_proxies.hpp"

#include "catch.hpp"

#include <string>

using narwhal::server::forwarded_peer;
using narwhal::server::TrustedProxies;

TEST_CASE("trusted proxies: addresses and networks", "[server][trusted_proxies]") {
    std::string bad;
    auto t = TrustedProxies::parse("127.0.0.1, 10.0.0.0/8,192.168.1.7/24 , fd00::/8, ::1", &bad);
    CHECK(bad.empty());
    CHECK(t.trusts("127.0.0.1"));
    CHECK_FALSE(t.trusts("127.0.0.2"));
    CHECK(t.trusts("10.255.1.2"));
    CHECK(t.trusts("192.168.1.200"));  // host bits of the entry are dropped
    CHECK_FALSE(t.trusts("192.168.2.1"));
    CHECK(t.trusts("fd12::1"));
    CHECK(t.trusts("0:0:0:0:0:0:0:1"));  // compared as addresses, not text
    CHECK(t.trusts("::ffff:10.1.2.3"));  // an IPv4 peer of a dual-stack socket
    CHECK_FALSE(t.trusts("fe80::1"));
    CHECK_FALSE(t.trusts("not-an-ip"));
    CHECK_FALSE(t.trusts(""));
    CHECK_FALSE(t.trusts_unix());
    CHECK_FALSE(t.trusts_all());
}

TEST_CASE("trusted proxies: star, unix: and bad entries", "[server][trusted_proxies]") {
    auto all = TrustedProxies::parse("*");
    CHECK(all.trusts("203.0.113.9"));
    CHECK(all.trusts("anything"));
    CHECK(all.trusts_unix());
    auto unix_only = TrustedProxies::parse("unix:");
    CHECK(unix_only.trusts_unix());
    CHECK_FALSE(unix_only.trusts("127.0.0.1"));
    for (const char* list : {"localhost", "10.0.0.0/33", "::/129", "10.0.0.1/", "1.2.3.4/x"}) {
        INFO(list);
        std::string bad;
        TrustedProxies::parse(list, &bad);
        CHECK(bad == list);
    }
    // Empty: no one is trusted.
    CHECK(TrustedProxies::parse("").empty());
    CHECK_FALSE(TrustedProxies::parse(" , ").trusts("127.0.0.1"));
}

TEST_CASE("trusted proxies: the peer of a request", "[server][trusted_proxies]") {
    auto trusted = TrustedProxies::parse("127.0.0.1");
    narwhal::asgi::Peer peer;
    peer.client_host = "127.0.0.1";
    peer.client_port = 5000;
    peer.server_host = "127.0.0.1";
    peer.server_port = 8000;
    CHECK(trusted.trusts_peer(peer));
    narwhal::asgi::RequestHead plain;
    plain.add_field("Host", "x");
    CHECK(forwarded_peer(peer, plain, trusted) == nullptr);  // the common request: no copy

    narwhal::asgi::RequestHead head;
    head.add_field("X-Forwarded-For", "203.0.113.9");
    head.add_field("X-Forwarded-Proto", "https");
    auto p = forwarded_peer(peer, head, trusted);
    REQUIRE(p);
    CHECK(p->client_host == "203.0.113.9");
    CHECK(p->client_port == 0);
    CHECK(p->secure);
    CHECK(p->server_port == 8000);
    CHECK(p->client_label() == "203.0.113.9:0");

    // Saying what is already so changes nothing.
    narwhal::asgi::RequestHead same;
    same.add_field("X-Forwarded-Proto", "http");
    CHECK(forwarded_peer(peer, same, trusted) == nullptr);

    narwhal::asgi::Peer unix_peer;
    CHECK_FALSE(trusted.trusts_peer(unix_peer));
    CHECK(TrustedProxies::parse("unix:").trusts_peer(unix_peer));
}
