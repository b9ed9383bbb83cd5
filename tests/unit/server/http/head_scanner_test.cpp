#include "server/http/head_scanner.hpp"

#include "catch.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

using namespace std::string_literals;
using narwhal::server::http::HeadLimits;
using narwhal::server::http::HeadScan;
using narwhal::server::http::HeadStatus;
using narwhal::server::http::http_status;
using narwhal::server::http::scan_head;

namespace {

HeadScan scan(std::string_view s, const HeadLimits& limits = {}) { return scan_head(s, limits); }

HeadStatus status_of(std::string_view s, const HeadLimits& limits = {}) {
    return scan_head(s, limits).status;
}

bool is_error(HeadStatus s) { return s != HeadStatus::ok && s != HeadStatus::incomplete; }

// A request line with `name` as the only header, for the field-line cases.
std::string with_field(std::string_view field) {
    return "GET / HTTP/1.1\r\n"s + std::string(field) + "\r\n\r\n";
}

// Every strict prefix of a valid head is incomplete (never an error), and the whole is ok.
void require_prefixes_incomplete(const std::string& head, const HeadLimits& limits = {}) {
    for (std::size_t i = 0; i < head.size(); ++i) {
        INFO("prefix of " << i << " bytes");
        REQUIRE(status_of(std::string_view(head).substr(0, i), limits) == HeadStatus::incomplete);
    }
    const HeadScan r = scan(head, limits);
    REQUIRE(r.status == HeadStatus::ok);
    REQUIRE(r.size == head.size());
}

const std::vector<std::string> k_valid_heads = {
    "GET / HTTP/1.1\r\n\r\n",
    "GET / HTTP/1.0\r\n\r\n",
    "GET /index.html?q=1&r=%20 HTTP/1.1\r\nHost: example.com\r\n\r\n",
    "\r\n\r\nPOST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n",
    "M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\n\r\n",
    "OPTIONS * HTTP/1.1\r\nX-Empty:\r\nX-Ows: \t v \t \r\nX-Obs: caf\xc3\xa9 \xff\x80\r\n\r\n",
    "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    "GET http://example.com/a/b HTTP/1.1\r\n!#$%&'*+-.^_`|~09azAZ: x\r\n\r\n",
};

}  // namespace

TEST_CASE("head_scanner: valid heads are ok with exact size", "[head_scanner]") {
    for (const auto& head : k_valid_heads) {
        INFO(head);
        const HeadScan r = scan(head);
        CHECK(r.status == HeadStatus::ok);
        CHECK(r.size == head.size());
        CHECK(std::string_view(r.reason).empty());
    }
}

TEST_CASE("head_scanner: every prefix of a valid head is incomplete", "[head_scanner]") {
    for (const auto& head : k_valid_heads) {
        INFO(head);
        require_prefixes_incomplete(head);
    }
    CHECK(status_of("") == HeadStatus::incomplete);
}

TEST_CASE("head_scanner: size is exact with pipelined bytes after the head", "[head_scanner]") {
    const std::string head = "POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\n";
    for (const std::string& tail : {"body"s, "\r\n"s, "\n"s, "\r\n\r\n"s, "\0\x01"s,
                                    "GET / HTTP/1.1\r\n\r\n"s, "garbage\n\n\r \x7f"s}) {
        const HeadScan r = scan(head + tail);
        REQUIRE(r.status == HeadStatus::ok);
        REQUIRE(r.size == head.size());
    }
    // With skipped lines, size counts them too.
    const HeadScan r = scan("\r\n\r\nGET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n");
    REQUIRE(r.status == HeadStatus::ok);
    REQUIRE(r.skip == 2);
    REQUIRE(r.size == 4 + 18);
}

TEST_CASE("head_scanner: leading empty lines", "[head_scanner]") {
    SECTION("up to four are skipped and counted") {
        for (std::size_t k = 0; k <= 4; ++k) {
            std::string head;
            for (std::size_t i = 0; i < k; ++i)
                head += "\r\n";
            head += "GET / HTTP/1.1\r\n\r\n";
            const HeadScan r = scan(head);
            REQUIRE(r.status == HeadStatus::ok);
            REQUIRE(r.skip == k);
            REQUIRE(r.size == head.size());
            require_prefixes_incomplete(head);
        }
    }
    SECTION("a fifth fails at once, even while incomplete") {
        CHECK(status_of("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n\r\n") == HeadStatus::bad_request);
        CHECK(status_of("\r\n\r\n\r\n\r\n\r") == HeadStatus::bad_request);
        CHECK(status_of("\r\n\r\n\r\n\r\n") == HeadStatus::incomplete);
    }
    SECTION("a leading bare LF or bare CR is rejected") {
        CHECK(status_of("\nGET / HTTP/1.1\r\n\r\n") == HeadStatus::bad_request);
        CHECK(status_of("\r\n\nGET / HTTP/1.1\r\n\r\n") == HeadStatus::bad_request);
        CHECK(status_of("\rGET / HTTP/1.1\r\n\r\n") == HeadStatus::bad_request);
        CHECK(status_of("\r\r\n") == HeadStatus::bad_request);
        CHECK(status_of("\r") == HeadStatus::incomplete);
    }
}

TEST_CASE("head_scanner: method", "[head_scanner]") {
    SECTION("any token is accepted") {
        for (const char* m : {"GET", "PROPFIND", "M-SEARCH", "get", "X", "!#$%&'*+-.^_`|~09azAZ"})
            CHECK(status_of(std::string(m) + " / HTTP/1.1\r\n\r\n") == HeadStatus::ok);
    }
    SECTION("non-token bytes are rejected, before the line is complete") {
        for (const std::string& m : {"GE(T"s, "GE\"T"s, "G,ET"s, "GE/T"s, "G\x80T"s, "GE\0T"s,
                                     "GE\x7fT"s, "G\tT"s, "GE@T"s, "GET{"s})
            CHECK(status_of(m + " / HTTP/1.1\r\n\r\n") == HeadStatus::bad_request);
        CHECK(status_of("GE(") == HeadStatus::bad_request);
        // A TLS ClientHello on a plain port fails on its first byte.
        CHECK(status_of("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"s) ==
              HeadStatus::bad_request);
    }
    SECTION("empty method") {
        const HeadScan r = scan(" / HTTP/1.1\r\n\r\n");
        CHECK(r.status == HeadStatus::bad_request);
        CHECK(std::string_view(r.reason) == "empty method");
    }
}

TEST_CASE("head_scanner: single spaces in the request line", "[head_scanner]") {
    CHECK(status_of("GET / HTTP/1.1\r\n\r\n") == HeadStatus::ok);
    for (const char* line :
         {"GET  / HTTP/1.1", "GET /  HTTP/1.1", "GET / HTTP/1.1 ", "GET\t/ HTTP/1.1",
          "GET /\tHTTP/1.1", " GET / HTTP/1.1", "GET / HTTP/1.1\t"}) {
        INFO(line);
        CHECK(status_of(std::string(line) + "\r\n\r\n") == HeadStatus::bad_request);
    }
    // Missing parts.
    for (const char* line : {"GET", "GET ", "GET /", "GET / ", "GET /HTTP/1.1"})
        CHECK(status_of(std::string(line) + "\r\n\r\n") == HeadStatus::bad_request);
}

TEST_CASE("head_scanner: request target", "[head_scanner]") {
    SECTION("every byte 0x21..0x7E is accepted") {
        std::string target;
        for (int c = 0x21; c <= 0x7E; ++c)
            target += static_cast<char>(c);
        CHECK(status_of("GET " + target + " HTTP/1.1\r\n\r\n") == HeadStatus::ok);
    }
    SECTION("CTLs, DEL and bytes >= 0x80 are rejected") {
        for (int c = 0; c < 256; ++c) {
            if (c >= 0x21 && c <= 0x7E)
                continue;
            if (c == ' ')  // would be the separator, i.e. a malformed version
                continue;
            INFO("byte " << c);
            const std::string head = "GET /a"s + static_cast<char>(c) + "b HTTP/1.1\r\n\r\n";
            CHECK(status_of(head) == HeadStatus::bad_request);
        }
        // Fails before the line is complete.
        CHECK(status_of("GET /a\x01"s) == HeadStatus::bad_request);
        CHECK(status_of("GET /a\0"s) == HeadStatus::bad_request);
    }
}

TEST_CASE("head_scanner: HTTP version", "[head_scanner]") {
    CHECK(status_of("GET / HTTP/1.1\r\n\r\n") == HeadStatus::ok);
    CHECK(status_of("GET / HTTP/1.0\r\n\r\n") == HeadStatus::ok);
    SECTION("other well-formed versions are 505") {
        for (const char* v : {"HTTP/2.0", "HTTP/0.9", "HTTP/1.2", "HTTP/9.9", "HTTP/3.0"}) {
            INFO(v);
            const HeadScan r = scan("GET / "s + v + "\r\n\r\n");
            CHECK(r.status == HeadStatus::version_not_supported);
            CHECK(http_status(r.status) == 505);
        }
        // Only once the line has ended: "HTTP/2.0\rX" is a bare CR, a 400.
        CHECK(status_of("GET / HTTP/2.0") == HeadStatus::incomplete);
        CHECK(status_of("GET / HTTP/2.0\r") == HeadStatus::incomplete);
        CHECK(status_of("GET / HTTP/2.0\rX") == HeadStatus::bad_request);
    }
    SECTION("anything else is 400") {
        for (const char* v : {"HTTP/1.10", "HTTP/11", "HTTP/1", "HTTP/1.", "http/1.1", "HTTPS/1.1",
                              "HTTP/1.1x", "HTTP/a.1", "HTTP/1.b", "HTTP 1.1", "HTTP/1,1", "HTTP/",
                              "H", "HTTP/1.1/", "XTTP/1.1"}) {
            INFO(v);
            CHECK(status_of("GET / "s + v + "\r\n\r\n") == HeadStatus::bad_request);
        }
        // Fails on the first wrong byte, not at the end of the line.
        CHECK(status_of("GET / HTTX") == HeadStatus::bad_request);
        CHECK(status_of("GET / HTTP/1.1x") == HeadStatus::bad_request);
    }
}

TEST_CASE("head_scanner: line endings", "[head_scanner]") {
    SECTION("bare LF anywhere") {
        for (const std::string& head :
             {"GET / HTTP/1.1\n\r\n"s, "GET / HTTP/1.1\r\nHost: a\n\r\n"s,
              "GET / HTTP/1.1\r\nHost: a\r\n\n"s, "GET / HTTP/1.1\r\nHost: a\nb\r\n\r\n"s,
              "GET / HTTP/1.1\n\n"s, "GET / HTTP/1.1\r\nHost\n: a\r\n\r\n"s,
              "GET /\n HTTP/1.1\r\n\r\n"s, "GET / HTTP/1.1\r\n\n"s}) {
            INFO(head);
            CHECK(status_of(head) == HeadStatus::bad_request);
        }
        const HeadScan r = scan("GET / HTTP/1.1\r\nHost: a\n\r\n");
        CHECK(std::string_view(r.reason) == "bare LF in request head");
    }
    SECTION("bare CR anywhere") {
        for (const std::string& head :
             {"GET / HTTP/1.1\rX\r\n\r\n"s, "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n"s,
              "GET / HTTP/1.1\r\nHost: a\r\r\n\r\n"s, "GET / HTTP/1.1\r\n\r\r\n"s,
              "GET / HTTP/1.1\r\n\rX"s, "GET /\r HTTP/1.1\r\n\r\n"s, "GET\r / HTTP/1.1\r\n\r\n"s,
              "GET / HTTP/1.1\r\nHost\r: a\r\n\r\n"s}) {
            INFO(head);
            CHECK(status_of(head) == HeadStatus::bad_request);
        }
        const HeadScan r = scan("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n");
        CHECK(std::string_view(r.reason) == "bare CR in request head");
    }
    SECTION("a CR as the last byte is incomplete") {
        CHECK(status_of("GET / HTTP/1.1\r") == HeadStatus::incomplete);
        CHECK(status_of("GET / HTTP/1.1\r\nHost: a\r") == HeadStatus::incomplete);
        CHECK(status_of("GET / HTTP/1.1\r\nHost: a\r\n\r") == HeadStatus::incomplete);
    }
}

TEST_CASE("head_scanner: field lines", "[head_scanner]") {
    SECTION("well-formed fields") {
        for (const char* f : {"Host: a", "Host:a", "Host:", "Host: ", "Host:\t a b\t", "X-A-B: 1",
                              "x: \"quoted, list\"; q=0.5", "Cookie: a=b; c=d"})
            CHECK(status_of(with_field(f)) == HeadStatus::ok);
    }
    SECTION("empty field name") {
        const HeadScan r = scan(with_field(": a"));
        CHECK(r.status == HeadStatus::bad_request);
        CHECK(std::string_view(r.reason) == "empty header name");
    }
    SECTION("whitespace between name and colon") {
        for (const char* f : {"Host : a", "Host\t: a", "Host  :a"}) {
            const HeadScan r = scan(with_field(f));
            CHECK(r.status == HeadStatus::bad_request);
            CHECK(std::string_view(r.reason) == "whitespace before colon in header");
        }
        CHECK(status_of("GET / HTTP/1.1\r\nHost ") == HeadStatus::bad_request);
    }
    SECTION("obs-fold") {
        for (const char* f : {"Host: a\r\n b", "Host: a\r\n\tb", "X: a\r\n  "}) {
            const HeadScan r = scan(with_field(f));
            CHECK(r.status == HeadStatus::bad_request);
            CHECK(std::string_view(r.reason) == "obs-fold in header");
        }
        // Whitespace before the first field line is the same smuggling vector.
        CHECK(status_of("GET / HTTP/1.1\r\n Host: a\r\n\r\n") == HeadStatus::bad_request);
        CHECK(status_of("GET / HTTP/1.1\r\n\t") == HeadStatus::bad_request);
    }
    SECTION("missing colon") {
        const HeadScan r = scan(with_field("Host"));
        CHECK(r.status == HeadStatus::bad_request);
        CHECK(std::string_view(r.reason) == "missing colon in header");
        CHECK(status_of("GET / HTTP/1.1\r\nHost\r") == HeadStatus::bad_request);
    }
    SECTION("non-token bytes in the name") {
        for (const std::string& f : {"Ho(st: a"s, "Ho/st: a"s, "H\xc3\xb3st: a"s, "Ho\0st: a"s,
                                     "Ho\x7fst: a"s, "[Host]: a"s, "Ho\"st: a"s, "Ho;st: a"s})
            CHECK(status_of(with_field(f)) == HeadStatus::bad_request);
    }
    SECTION("value bytes: HTAB, SP, VCHAR and obs-text are allowed") {
        std::string value = "\t ";
        for (int c = 0x21; c <= 0xFF; ++c)
            if (c != 0x7F)
                value += static_cast<char>(c);
        CHECK(status_of(with_field("X: " + value)) == HeadStatus::ok);
    }
    SECTION("value bytes: NUL, other CTLs and DEL are rejected") {
        for (int c = 0; c < 0x20; ++c) {
            if (c == '\t')
                continue;
            INFO("byte " << c);
            const std::string head = with_field("X: a"s + static_cast<char>(c) + "b");
            CHECK(status_of(head) == HeadStatus::bad_request);
            // And before the line is complete (a CR as the last byte is a pending CRLF).
            if (c != '\r')
                CHECK(status_of("GET / HTTP/1.1\r\nX: a"s + static_cast<char>(c)) ==
                      HeadStatus::bad_request);
        }
        CHECK(status_of(with_field("X: a\x7f")) == HeadStatus::bad_request);
        const HeadScan r = scan(with_field("X: a\0b"s));
        CHECK(std::string_view(r.reason) == "NUL in header value");
    }
}

// Values are checked a word at a time; put each interesting byte at every offset so both
// the word path and the byte path see it, at every alignment.
TEST_CASE("head_scanner: value bytes at every offset", "[head_scanner]") {
    const std::string prefix = "GET / HTTP/1.1\r\nX: ";
    for (std::size_t len = 1; len <= 40; ++len) {
        for (std::size_t at = 0; at < len; ++at) {
            for (const int c : {0x00, 0x01, 0x08, 0x0B, 0x0C, 0x1F, 0x7F}) {
                std::string value(len, 'v');
                value[at] = static_cast<char>(c);
                INFO("len " << len << " at " << at << " byte " << c);
                REQUIRE(status_of(prefix + value + "\r\n\r\n") == HeadStatus::bad_request);
                REQUIRE(status_of(prefix + value) == HeadStatus::bad_request);
            }
            for (const int c : {0x09, 0x20, 0x21, 0x7E, 0x80, 0xFF}) {
                std::string value(len, 'v');
                value[at] = static_cast<char>(c);
                INFO("len " << len << " at " << at << " byte " << c);
                const std::string head = prefix + value + "\r\n\r\n";
                const HeadScan r = scan(head + "tail");
                REQUIRE(r.status == HeadStatus::ok);
                REQUIRE(r.size == head.size());
                REQUIRE(status_of(prefix + value) == HeadStatus::incomplete);
                REQUIRE(status_of(prefix + value + "\r") == HeadStatus::incomplete);
            }
        }
    }
    SECTION("a value after HTABs still has its bad bytes found") {
        CHECK(status_of(prefix + "\t\t" + std::string(30, 'v') + "\x01" + "vv\r\n\r\n") ==
              HeadStatus::bad_request);
        CHECK(status_of(prefix + "\t" + std::string(30, 'v') + "\t" + std::string(30, 'v') +
                        "\r\n\r\n") == HeadStatus::ok);
    }
    SECTION("field size limits at every length") {
        for (std::size_t limit = 4; limit <= 40; ++limit) {
            HeadLimits limits;
            limits.field_size = limit;
            const std::string at = "X: " + std::string(limit - 3, 'v');
            INFO("limit " << limit);
            REQUIRE(status_of(with_field(at), limits) == HeadStatus::ok);
            REQUIRE(status_of(with_field(at + "v"), limits) == HeadStatus::head_too_large);
            REQUIRE(status_of(with_field(at + "\t"), limits) == HeadStatus::head_too_large);
            REQUIRE(status_of("GET / HTTP/1.1\r\n" + at, limits) == HeadStatus::incomplete);
            REQUIRE(status_of("GET / HTTP/1.1\r\n" + at + "v", limits) ==
                    HeadStatus::head_too_large);
        }
    }
}

TEST_CASE("head_scanner: request line limit", "[head_scanner]") {
    HeadLimits limits;
    limits.request_line = 20;
    const std::string at = "GET /" + std::string(6, 'a') + " HTTP/1.1";  // 20 bytes
    REQUIRE(at.size() == 20);
    const std::string past = "GET /" + std::string(7, 'a') + " HTTP/1.1";  // 21 bytes

    SECTION("at the limit") {
        require_prefixes_incomplete(at + "\r\n\r\n", limits);
        // Skipped empty lines do not count against it.
        CHECK(status_of("\r\n\r\n" + at + "\r\n\r\n", limits) == HeadStatus::ok);
    }
    SECTION("one past the limit is 414, as soon as the 21st byte arrives") {
        const HeadScan r = scan(past + "\r\n\r\n", limits);
        CHECK(r.status == HeadStatus::uri_too_long);
        CHECK(http_status(r.status) == 414);
        CHECK(status_of(past, limits) == HeadStatus::uri_too_long);
        CHECK(status_of(past.substr(0, 21), limits) == HeadStatus::uri_too_long);
        CHECK(status_of(past.substr(0, 20), limits) == HeadStatus::incomplete);
        // Also when the excess is in the method or the version.
        CHECK(status_of(std::string(21, 'A'), limits) == HeadStatus::uri_too_long);
        CHECK(status_of("GET /" + std::string(6, 'a') + " HTTP/1.1x", limits) ==
              HeadStatus::uri_too_long);
    }
    SECTION("default limit") {
        const std::string target(8190 - 4 - 9, 'a');  // "GET " + target + " HTTP/1.1"
        CHECK(status_of("GET " + target + " HTTP/1.1\r\n\r\n") == HeadStatus::ok);
        CHECK(status_of("GET " + target + "a HTTP/1.1\r\n\r\n") == HeadStatus::uri_too_long);
    }
}

TEST_CASE("head_scanner: field size limit", "[head_scanner]") {
    HeadLimits limits;
    limits.field_size = 16;
    const std::string at = "X-Long: " + std::string(8, 'v');  // 16 bytes
    REQUIRE(at.size() == 16);

    SECTION("at the limit") { require_prefixes_incomplete(with_field(at), limits); }
    SECTION("one past the limit is 431, even while incomplete") {
        const HeadScan r = scan(with_field(at + "v"), limits);
        CHECK(r.status == HeadStatus::head_too_large);
        CHECK(http_status(r.status) == 431);
        CHECK(status_of("GET / HTTP/1.1\r\n" + at + "v", limits) == HeadStatus::head_too_large);
        CHECK(status_of("GET / HTTP/1.1\r\n" + at, limits) == HeadStatus::incomplete);
        // A name alone can be too long as well.
        CHECK(status_of("GET / HTTP/1.1\r\n" + std::string(17, 'X'), limits) ==
              HeadStatus::head_too_large);
        CHECK(status_of(with_field(std::string(16, 'X') + ":"), limits) ==
              HeadStatus::head_too_large);
    }
}

TEST_CASE("head_scanner: field count limit", "[head_scanner]") {
    HeadLimits limits;
    limits.fields = 3;
    const std::string three = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n";
    SECTION("at the limit") { require_prefixes_incomplete(three + "\r\n", limits); }
    SECTION("one past the limit is 431, as soon as the extra line starts") {
        CHECK(status_of(three + "D: 4\r\n\r\n", limits) == HeadStatus::head_too_large);
        CHECK(status_of(three + "D", limits) == HeadStatus::head_too_large);
    }
    SECTION("default limit of 100") {
        std::string head = "GET / HTTP/1.1\r\n";
        for (int i = 0; i < 100; ++i)
            head += "X-" + std::to_string(i) + ": v\r\n";
        CHECK(status_of(head + "\r\n") == HeadStatus::ok);
        CHECK(status_of(head + "X: v\r\n\r\n") == HeadStatus::head_too_large);
    }
}

TEST_CASE("head_scanner: whole head limit", "[head_scanner]") {
    const std::string head = "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n";
    HeadLimits at;
    at.head = head.size();
    HeadLimits under;
    under.head = head.size() - 1;

    SECTION("at the limit") {
        require_prefixes_incomplete(head, at);
        // Pipelined bytes past the limit do not count.
        CHECK(status_of(head + "GET / HTTP/1.1\r\n\r\n", at) == HeadStatus::ok);
    }
    SECTION("one past the limit is 431") {
        const HeadScan r = scan(head, under);
        CHECK(r.status == HeadStatus::head_too_large);
        CHECK(http_status(r.status) == 431);
        // Leading empty lines count: size does.
        CHECK(status_of("\r\n" + head, at) == HeadStatus::head_too_large);
    }
    SECTION("an incomplete head already longer than the limit is 431") {
        HeadLimits small;
        small.head = 20;
        const std::string partial = "GET / HTTP/1.1\r\nHost";                  // 20 bytes
        CHECK(status_of(partial, small) == HeadStatus::incomplete);            // at the limit
        CHECK(status_of(partial + ":", small) == HeadStatus::head_too_large);  // one past
        // Holds whatever limit would otherwise be hit first.
        CHECK(status_of(std::string(21, 'A'), small) == HeadStatus::head_too_large);
    }
    SECTION("default limit") {
        std::string big = "GET / HTTP/1.1\r\n";
        while (big.size() < 32768 - 2 - 8002)
            big += "X: " + std::string(7995, 'v') + "\r\n";  // 8000-byte lines
        const std::size_t fill = 32768 - 2 - big.size() - 5;
        big += "Y: " + std::string(fill, 'v') + "\r\n";
        REQUIRE(big.size() + 2 == 32768);
        CHECK(status_of(big + "\r\n") == HeadStatus::ok);
        big.insert(big.size() - 2, "v");
        CHECK(status_of(big + "\r\n") == HeadStatus::head_too_large);
    }
}

TEST_CASE("head_scanner: http_status", "[head_scanner]") {
    CHECK(http_status(HeadStatus::ok) == 0);
    CHECK(http_status(HeadStatus::incomplete) == 0);
    CHECK(http_status(HeadStatus::bad_request) == 400);
    CHECK(http_status(HeadStatus::uri_too_long) == 414);
    CHECK(http_status(HeadStatus::head_too_large) == 431);
    CHECK(http_status(HeadStatus::version_not_supported) == 505);
}

TEST_CASE("head_scanner: errors have reasons", "[head_scanner]") {
    for (const std::string& head : {"GET / HTTP/1.1\r\nHost : a\r\n\r\n"s, "GE(T"s, "\n"s,
                                    "GET / HTTP/2.0\r\n\r\n"s, std::string(9000, 'A')}) {
        const HeadScan r = scan(head);
        REQUIRE(is_error(r.status));
        CHECK_FALSE(std::string_view(r.reason).empty());
    }
}

// Errors and ok are final: more bytes never turn them into something else. That is what
// lets the caller act on the first verdict. Checked on mutations of the valid heads.
TEST_CASE("head_scanner: verdicts are stable as bytes arrive", "[head_scanner]") {
    std::uint64_t state = 0x9E3779B97F4A7C15ull;
    auto next = [&state] {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        return state;
    };
    const std::string alphabet = "\r\n \t:\0\x7f\x80/AzH.1"s;
    HeadLimits limits;
    limits.head = 64;
    limits.request_line = 40;
    limits.field_size = 30;
    limits.fields = 3;
    for (int round = 0; round < 3000; ++round) {
        std::string s = k_valid_heads[next() % k_valid_heads.size()];
        const int edits = static_cast<int>(next() % 3);
        for (int e = 0; e < edits; ++e)
            s[next() % s.size()] = alphabet[next() % alphabet.size()];
        s += "GET / HTTP/1.1\r\n\r\n";
        for (const HeadLimits& l : {HeadLimits{}, limits}) {
            HeadScan first_final;
            bool seen_final = false;
            for (std::size_t i = 0; i <= s.size(); ++i) {
                const HeadScan r = scan_head(std::string_view(s).substr(0, i), l);
                if (r.status == HeadStatus::ok)
                    REQUIRE(r.size <= i);
                if (!seen_final) {
                    if (r.status != HeadStatus::incomplete) {
                        first_final = r;
                        seen_final = true;
                    }
                    continue;
                }
                INFO(s << " at " << i);
                REQUIRE(r.status == first_final.status);
                REQUIRE(r.size == first_final.size);
            }
        }
    }
}

TEST_CASE("head_scanner: scan_request_line keeps the valid parts", "[head_scanner]") {
    using narwhal::server::http::scan_request_line;
    auto line = scan_request_line("\r\nGET /a?b HTTP/1.0\r\nBad header\r\n\r\n", {});
    CHECK(line.method == "GET");
    CHECK(line.target == "/a?b");
    CHECK(line.version == 10);
    line = scan_request_line("GET /v2 HTTP/2.0\r\n\r\n", {});
    CHECK(line.target == "/v2");
    CHECK(line.version == 20);
    // The target breaks the line limit: only the method is known.
    HeadLimits small;
    small.request_line = 16;
    const std::string long_target = "GET /" + std::string(40, 'a') + " HTTP/1.1\r\n\r\n";
    line = scan_request_line(long_target, small);  // views into long_target
    CHECK(line.method == "GET");
    CHECK(line.target.empty());
    CHECK(line.version == 0);
    // An invalid byte in the target: it is not shown.
    line = scan_request_line("GET /a\x01 HTTP/1.1\r\n\r\n", {});
    CHECK(line.method == "GET");
    CHECK(line.target.empty());
    line = scan_request_line("GARBAGE\r\n\r\n", {});
    CHECK(line.method.empty());
}
