#include "server/proxy_protocol.hpp"

#include "catch.hpp"

#include <string>
#include <string_view>

using namespace std::string_literals;
namespace pp = narwhal::server::proxy_protocol;
using Status = pp::Parse::Status;

namespace {

const std::string v2_signature("\r\n\r\n\0\r\nQUIT\n", 12);

std::string v2(unsigned char ver_cmd, unsigned char family, std::string_view payload,
               int length = -1) {
    std::string out = v2_signature;
    out += static_cast<char>(ver_cmd);
    out += static_cast<char>(family);
    std::size_t len = length < 0 ? payload.size() : static_cast<std::size_t>(length);
    out += static_cast<char>(len >> 8);
    out += static_cast<char>(len & 0xFF);
    out += payload;
    return out;
}

std::string ipv4_payload() {
    // 192.0.2.1:56324 -> 198.51.100.7:443
    return "\xC0\x00\x02\x01"
           "\xC6\x33\x64\x07"
           "\xDC\x04"
           "\x01\xBB"s;
}

}  // namespace

TEST_CASE("proxy v1: TCP4 and TCP6 lines give both addresses", "[server][proxy_protocol]") {
    std::string line = "PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\nGET / HTTP/1.1\r\n";
    auto p = pp::parse(line, pp::Version::v1);
    REQUIRE(p.status == Status::done);
    CHECK(p.size == line.find("GET"));
    CHECK(p.header.has_addresses);
    CHECK(p.header.source_host == "192.0.2.1");
    CHECK(p.header.source_port == 56324);
    CHECK(p.header.dest_host == "198.51.100.7");
    CHECK(p.header.dest_port == 443);

    auto p6 = pp::parse("PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n", pp::Version::any);
    REQUIRE(p6.status == Status::done);
    CHECK(p6.header.source_host == "2001:db8::1");
    CHECK(p6.header.dest_port == 65535);
}

TEST_CASE("proxy v1: UNKNOWN keeps the socket's addresses", "[server][proxy_protocol]") {
    for (std::string line : {"PROXY UNKNOWN\r\n"s, "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"s}) {
        auto p = pp::parse(line, pp::Version::v1);
        REQUIRE(p.status == Status::done);
        CHECK(p.size == line.size());
        CHECK_FALSE(p.header.has_addresses);
    }
}

TEST_CASE("proxy v1: every prefix of a header is incomplete", "[server][proxy_protocol]") {
    std::string line = "PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n";
    for (std::size_t n = 1; n < line.size(); ++n) {
        INFO("prefix " << n);
        CHECK(pp::parse(line.substr(0, n), pp::Version::any).status == Status::incomplete);
    }
    CHECK(pp::parse("", pp::Version::any).status == Status::incomplete);
}

TEST_CASE("proxy v1: malformed lines are invalid", "[server][proxy_protocol]") {
    const char* bad[] = {
        "GET / HTTP/1.1\r\n",                             // bad signature
        "PROXY TCP5 192.0.2.1 198.51.100.7 1 2\r\n",      // bad family
        "PROXY TCP4 192.0.2.1 198.51.100.7 1\r\n",        // missing field
        "PROXY TCP4 192.0.2.1 198.51.100.7 1 2 3\r\n",    // extra field
        "PROXY TCP4 192.0.2.1  198.51.100.7 1 2\r\n",     // empty field
        "PROXY TCP4 2001:db8::1 198.51.100.7 1 2\r\n",    // address of the other family
        "PROXY TCP6 2001:db8::1 198.51.100.7 1 2\r\n",    // address of the other family
        "PROXY TCP4 192.0.2.300 198.51.100.7 1 2\r\n",    // not an address
        "PROXY TCP4 192.0.2.1 198.51.100.7 65536 2\r\n",  // port too large
        "PROXY TCP4 192.0.2.1 198.51.100.7 080 2\r\n",    // leading zero
        "PROXY TCP4 192.0.2.1 198.51.100.7 -1 2\r\n",     // negative port
        "PROXY TCP4 192.0.2.1 198.51.100.7 1 x\r\n",      // not a number
        "PROXY TCP4 192.0.2.1 198.51.100.7 1 2\rX",       // CR without LF
        "proxy TCP4 192.0.2.1 198.51.100.7 1 2\r\n",      // case matters
    };
    for (const char* line : bad) {
        INFO(line);
        auto p = pp::parse(line, pp::Version::any);
        CHECK(p.status == Status::invalid);
        CHECK(p.error != nullptr);
    }
}

TEST_CASE("proxy v1: a line over 107 bytes is invalid, even unfinished",
          "[server][proxy_protocol]") {
    std::string longest = "PROXY UNKNOWN " + std::string(107 - 16, 'x') + "\r\n";
    REQUIRE(longest.size() == 107);
    CHECK(pp::parse(longest, pp::Version::v1).status == Status::done);
    std::string too_long = "PROXY UNKNOWN " + std::string(107 - 15, 'x') + "\r\n";
    CHECK(pp::parse(too_long, pp::Version::v1).status == Status::invalid);
    // No CR in the first 107 bytes: no need to wait for more.
    std::string endless = "PROXY UNKNOWN " + std::string(200, 'x');
    CHECK(pp::parse(endless.substr(0, 107), pp::Version::v1).status == Status::invalid);
    CHECK(pp::parse(endless.substr(0, 106), pp::Version::v1).status == Status::incomplete);
}

TEST_CASE("proxy v2: PROXY over TCP4 and TCP6", "[server][proxy_protocol]") {
    std::string h = v2(0x21, 0x11, ipv4_payload()) + "\x16\x03\x01";  // TLS follows
    auto p = pp::parse(h, pp::Version::v2);
    REQUIRE(p.status == Status::done);
    CHECK(p.size == 28);
    CHECK(p.header.source_host == "192.0.2.1");
    CHECK(p.header.source_port == 56324);
    CHECK(p.header.dest_host == "198.51.100.7");
    CHECK(p.header.dest_port == 443);

    std::string a6(36, '\0');
    a6[15] = 1;                        // ::1
    a6[16] = '\x20', a6[17] = '\x01';  // 2001::
    a6[32] = 0, a6[33] = 80;
    a6[34] = '\x1F', a6[35] = '\x90';  // 8080
    auto p6 = pp::parse(v2(0x21, 0x21, a6), pp::Version::any);
    REQUIRE(p6.status == Status::done);
    CHECK(p6.header.source_host == "::1");
    CHECK(p6.header.source_port == 80);
    CHECK(p6.header.dest_host == "2001::");
    CHECK(p6.header.dest_port == 8080);
}

TEST_CASE("proxy v2: TLVs are skipped within the length", "[server][proxy_protocol]") {
    // PP2_TYPE_AUTHORITY "example.com", then a NOOP.
    std::string tlvs = "\x02\x00\x0B"
                       "example.com"
                       "\x04\x00\x02xx"s;
    std::string h = v2(0x21, 0x11, ipv4_payload() + tlvs);
    auto p = pp::parse(h + "GET", pp::Version::v2);
    REQUIRE(p.status == Status::done);
    CHECK(p.size == h.size());
    CHECK(p.header.source_host == "192.0.2.1");
}

TEST_CASE("proxy v2: LOCAL, UNSPEC and UNIX keep the socket's addresses",
          "[server][proxy_protocol]") {
    auto local = pp::parse(v2(0x20, 0x00, ""), pp::Version::v2);
    REQUIRE(local.status == Status::done);
    CHECK(local.size == 16);
    CHECK_FALSE(local.header.has_addresses);
    // LOCAL with addresses (HAProxy's health checks may send them): ignored.
    auto local4 = pp::parse(v2(0x20, 0x11, ipv4_payload()), pp::Version::v2);
    REQUIRE(local4.status == Status::done);
    CHECK_FALSE(local4.header.has_addresses);
    auto unspec = pp::parse(v2(0x21, 0x00, ""), pp::Version::v2);
    REQUIRE(unspec.status == Status::done);
    CHECK_FALSE(unspec.header.has_addresses);
    auto unix_ = pp::parse(v2(0x21, 0x31, std::string(216, 'a')), pp::Version::v2);
    REQUIRE(unix_.status == Status::done);
    CHECK_FALSE(unix_.header.has_addresses);
}

TEST_CASE("proxy v2: every prefix of a header is incomplete", "[server][proxy_protocol]") {
    std::string h = v2(0x21, 0x11, ipv4_payload() + "\x04\x00\x01z"s);
    for (std::size_t n = 1; n < h.size(); ++n) {
        INFO("prefix " << n);
        CHECK(pp::parse(h.substr(0, n), pp::Version::any).status == Status::incomplete);
    }
}

TEST_CASE("proxy v2: malformed headers are invalid", "[server][proxy_protocol]") {
    std::string bad_sig = v2(0x21, 0x11, ipv4_payload());
    bad_sig[11] = 'X';
    std::string bad_sig_prefix = v2_signature.substr(0, 5) + "Y";
    const std::string bad[] = {
        bad_sig,                                     // bad signature
        bad_sig_prefix,                              // bad already in the first bytes
        v2(0x11, 0x11, ipv4_payload()),              // version 1 in a v2 header
        v2(0x31, 0x11, ipv4_payload()),              // version 3
        v2(0x22, 0x11, ipv4_payload()),              // command 2
        v2(0x21, 0x41, ipv4_payload()),              // family 4
        v2(0x21, 0x13, ipv4_payload()),              // transport 3
        v2(0x21, 0x12, ipv4_payload()),              // UDP on a stream
        v2(0x21, 0x11, ipv4_payload(), 11),          // length shorter than two IPv4 addresses
        v2(0x21, 0x21, std::string(35, 'a'), 35),    // ... than two IPv6 addresses
        v2(0x21, 0x31, std::string(215, 'a'), 215),  // ... than two Unix addresses
    };
    for (const auto& h : bad) {
        INFO("header bytes: " << h.size());
        CHECK(pp::parse(h, pp::Version::any).status == Status::invalid);
    }
}

TEST_CASE("proxy v2: the length field bounds the header", "[server][proxy_protocol]") {
    // The largest length waits for all of its bytes and consumes exactly them.
    std::string h = v2(0x21, 0x11, ipv4_payload(), 0xFFFF);
    CHECK(pp::parse(h, pp::Version::v2).status == Status::incomplete);
    std::string full = h + std::string(0xFFFF - 12, '\x04');
    auto p = pp::parse(full + "tail", pp::Version::v2);
    REQUIRE(p.status == Status::done);
    CHECK(p.size == 16 + 0xFFFF);
}

TEST_CASE("proxy: the version setting picks what is accepted", "[server][proxy_protocol]") {
    std::string v1 = "PROXY UNKNOWN\r\n";
    std::string h2 = v2(0x20, 0x00, "");
    CHECK(pp::parse(v1, pp::Version::v2).status == Status::invalid);
    CHECK(pp::parse(h2, pp::Version::v1).status == Status::invalid);
    CHECK(pp::parse(v1, pp::Version::any).status == Status::done);
    CHECK(pp::parse(h2, pp::Version::any).status == Status::done);
    // Neither: plain HTTP or a TLS ClientHello sent without a header.
    CHECK(pp::parse("GET / HTTP/1.1\r\n", pp::Version::any).status == Status::invalid);
    CHECK(pp::parse("\x16\x03\x01\x02", pp::Version::any).status == Status::invalid);
}
