#include "asgi/forwarded.hpp"

#include "catch.hpp"

#include <initializer_list>
#include <set>
#include <string>
#include <string_view>
#include <utility>

using narwhal::asgi::ForwardedFacts;
using narwhal::asgi::parse_forwarded_hop;
using narwhal::asgi::read_forwarded;
using narwhal::asgi::RequestHead;
using narwhal::asgi::TrustCheck;

namespace {

// Trusts the listed addresses exactly (the network matcher is tested in server/).
class Trust final : public TrustCheck {
public:
    Trust(std::initializer_list<std::string> hosts) : hosts_(hosts) {}
    bool trusts(std::string_view host) const override { return hosts_.contains(std::string(host)); }

private:
    std::set<std::string> hosts_;
};

ForwardedFacts read(std::initializer_list<std::pair<std::string_view, std::string_view>> fields,
                    const Trust& trust = Trust{"127.0.0.1", "10.0.0.1", "10.0.0.2"}) {
    RequestHead head;
    head.add_field("Host", "example.com");
    for (auto [name, value] : fields)
        head.add_field(name, value);
    return read_forwarded(head, trust);
}

}  // namespace

TEST_CASE("forwarded: hop syntax", "[asgi][forwarded]") {
    CHECK(parse_forwarded_hop("192.0.2.1").host == "192.0.2.1");
    auto h = parse_forwarded_hop(" 192.0.2.1:8080 ");
    CHECK(h.host == "192.0.2.1");
    CHECK(h.port == 8080);
    CHECK(parse_forwarded_hop("2001:db8::1").host == "2001:db8::1");
    auto h6 = parse_forwarded_hop("[2001:db8::1]:443");
    CHECK(h6.host == "2001:db8::1");
    CHECK(h6.port == 443);
    CHECK(parse_forwarded_hop("[2001:db8::1]").port == 0);
    CHECK(parse_forwarded_hop("192.0.2.1:_hidden").host == "192.0.2.1");
    for (std::string_view bad :
         {"", "unknown", "_obf", "example.com", "192.0.2.1:99999", "192.0.2.1:x", "[2001:db8::1",
          "[2001:db8::1]x", "[192.0.2.1]", "192.0.2.256", "1.2.3.4:5:6"}) {
        INFO(bad);
        CHECK(parse_forwarded_hop(bad).host.empty());
    }
}

TEST_CASE("forwarded: no proxy headers, nothing", "[asgi][forwarded]") {
    auto f = read({{"User-Agent", "x"}});
    CHECK_FALSE(f.any());
}

TEST_CASE("forwarded: X-Forwarded-For, the rightmost untrusted hop", "[asgi][forwarded]") {
    auto f = read({{"X-Forwarded-For", "203.0.113.9, 198.51.100.2, 10.0.0.2"}});
    REQUIRE(f.client_host);
    CHECK(*f.client_host == "198.51.100.2");
    CHECK(f.client_port == 0);
    // Two header lines are one list.
    auto two = read({{"X-Forwarded-For", "203.0.113.9"}, {"X-Forwarded-For", "10.0.0.1"}});
    CHECK(*two.client_host == "203.0.113.9");
    // Every hop trusted: the leftmost.
    auto all = read({{"X-Forwarded-For", "10.0.0.1,10.0.0.2"}});
    CHECK(*all.client_host == "10.0.0.1");
    // A port named by the hop is kept.
    auto port = read({{"X-Forwarded-For", "203.0.113.9:4711"}});
    CHECK(*port.client_host == "203.0.113.9");
    CHECK(port.client_port == 4711);
}

TEST_CASE("forwarded: malformed X-Forwarded-For changes nothing", "[asgi][forwarded]") {
    for (std::string_view v :
         {"", " ", "unknown", "not-an-ip", "203.0.113.9, garbage", "203.0.113.9,,", "300.1.1.1"}) {
        INFO(v);
        CHECK_FALSE(read({{"X-Forwarded-For", v}}).client_host);
    }
    // Garbage left of the client does not matter: the walk stops before it.
    CHECK(*read({{"X-Forwarded-For", "garbage, 203.0.113.9"}}).client_host == "203.0.113.9");
}

TEST_CASE("forwarded: X-Forwarded-Proto", "[asgi][forwarded]") {
    CHECK(*read({{"X-Forwarded-Proto", "https"}}).secure);
    CHECK(*read({{"X-Forwarded-Proto", " wss "}}).secure);
    CHECK_FALSE(*read({{"X-Forwarded-Proto", "http"}}).secure);
    CHECK_FALSE(*read({{"X-Forwarded-Proto", "ws"}}).secure);
    CHECK_FALSE(read({{"X-Forwarded-Proto", "ftp"}}).secure);
    CHECK_FALSE(read({{"X-Forwarded-Proto", "https, http"}}).secure);
    // The last line wins, as in uvicorn.
    CHECK_FALSE(*read({{"X-Forwarded-Proto", "https"}, {"X-Forwarded-Proto", "http"}}).secure);
}

TEST_CASE("forwarded: RFC 7239 Forwarded", "[asgi][forwarded]") {
    auto f = read({{"Forwarded", "for=203.0.113.9;proto=https, for=10.0.0.2;proto=http"}});
    REQUIRE(f.client_host);
    CHECK(*f.client_host == "203.0.113.9");
    CHECK(*f.secure);  // the proto of the client's own element
    auto q = read({{"Forwarded", R"(For="[2001:db8:cafe::17]:4711";Proto=http;by=_lb)"}});
    REQUIRE(q.client_host);
    CHECK(*q.client_host == "2001:db8:cafe::17");
    CHECK(q.client_port == 4711);
    CHECK_FALSE(*q.secure);
    // Escapes inside a quoted value.
    auto e = read({{"Forwarded", R"(for="192.0.2.\43")"}});
    REQUIRE(e.client_host);
    CHECK(*e.client_host == "192.0.2.43");
    // Two lines are one list.
    auto two = read({{"Forwarded", "for=203.0.113.9"}, {"Forwarded", "for=10.0.0.1"}});
    CHECK(*two.client_host == "203.0.113.9");
}

TEST_CASE("forwarded: unknown, obfuscated and malformed Forwarded change nothing",
          "[asgi][forwarded]") {
    for (std::string_view v : {"for=unknown", "for=_hidden;proto=https", "for=", "for",
                               "for=\"192.0.2.1", "for=192.0.2.1;;for=192.0.2.2", "=x",
                               "for=192.0.2.1 junk", "proto=https", "for=[2001:db8::1]"}) {
        INFO(v);
        auto f = read({{"Forwarded", v}});
        CHECK_FALSE(f.client_host);
        CHECK_FALSE(f.secure);
    }
    // An element without "for" leaves the chain unknown.
    CHECK_FALSE(read({{"Forwarded", "for=203.0.113.9, proto=https"}}).client_host);
}

TEST_CASE("forwarded: X-Forwarded-* take precedence over Forwarded", "[asgi][forwarded]") {
    auto f = read({{"Forwarded", "for=198.51.100.77;proto=http"},
                   {"X-Forwarded-For", "203.0.113.9"},
                   {"X-Forwarded-Proto", "https"}});
    CHECK(*f.client_host == "203.0.113.9");
    CHECK(*f.secure);
    // Forwarded fills in what X-Forwarded-* do not say.
    auto mixed =
        read({{"Forwarded", "for=198.51.100.77;proto=https"}, {"X-Forwarded-For", "203.0.113.9"}});
    CHECK(*mixed.client_host == "203.0.113.9");
    CHECK(*mixed.secure);
}
