#include "server/http/request_parser.hpp"

#include "asgi/events.hpp"

#include "catch.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/optional/optional_io.hpp>  // lets Catch print boost::optional

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

using namespace std::string_literals;
using narwhal::asgi::RequestHead;
using narwhal::server::http::RequestParser;
namespace bhttp = boost::beast::http;

namespace {

constexpr uint64_t default_body_limit = 1 << 20;

// One head fed the way the session feeds it: one put() of the head bytes, eager(false).
struct Parse {
    RequestHead head;
    RequestParser parser{head};
    boost::beast::error_code ec;
    std::size_t used = 0;

    explicit Parse(std::string_view in, uint64_t body_limit = default_body_limit) {
        parser.header_limit(16 * 1024);
        parser.body_limit(body_limit);
        parser.eager(false);
        used = parser.put(boost::asio::buffer(in.data(), in.size()), ec);
    }

    bool ok() const { return !ec && parser.is_header_done() && parser.error_status() == 0; }

    std::vector<std::pair<std::string, std::string>> fields() const {
        std::vector<std::pair<std::string, std::string>> out;
        for (const auto& f : head.fields())
            out.emplace_back(head.view(f.name), head.view(f.value));
        return out;
    }

    // The status the session answers with (head_reader.cpp: error_status() when our
    // callbacks refused, else 431/413 for Beast's limits and 400 for any other error).
    int answered_status() const {
        if (parser.error_status())
            return parser.error_status();
        if (ec == bhttp::error::header_limit)
            return 431;
        if (ec == bhttp::error::body_limit)
            return 413;
        return ec ? 400 : 0;
    }
};

std::string request(std::string_view request_line, std::string_view fields) {
    return std::string(request_line) + "\r\n" + std::string(fields) + "\r\n";
}

std::string get11(std::string_view fields) {
    return request("GET / HTTP/1.1", "Host: h\r\n"s + std::string(fields));
}

// Refused by our callbacks with `status`.
void require_refused(const std::string& in, int status, std::string_view reason) {
    INFO("head: " << in);
    Parse p(in);
    CHECK(p.ec);
    CHECK(p.parser.error_status() == status);
    CHECK(std::string_view(p.parser.error_reason()) == reason);
    CHECK(p.answered_status() == status);
}

// Refused by Beast before our callbacks see the field: no error_status of our own, but
// the session still answers 400.
void require_refused_by_beast(const std::string& in, bhttp::error expected) {
    INFO("head: " << in);
    Parse p(in);
    CHECK(p.ec == expected);
    CHECK(p.parser.error_status() == 0);
    CHECK(p.answered_status() == 400);
}

// Beast's error for two different Content-Length values: its own name in newer Beast
// (Boost 1.83 has it), bad_content_length in Boost 1.74. Detected, not version-guessed.
template <class Error = bhttp::error> constexpr Error conflicting_content_length_error() {
    if constexpr (requires { Error::multiple_content_length; })
        return Error::multiple_content_length;
    else
        return Error::bad_content_length;
}

}  // namespace

TEST_CASE("request_parser: request line and fields", "[request_parser]") {
    const std::string in = "GET /a/b?x=1&y=%20 HTTP/1.1\r\n"
                           "Host: example.com\r\n"
                           "X-Custom: Mixed Case Value\r\n"
                           "ACCEPT: */*\r\n"
                           "x-custom: second\r\n"
                           "Empty:\r\n"
                           "Spaced:  \t inner  value \t \r\n"
                           "\r\n";
    Parse p(in);
    REQUIRE(p.ok());
    CHECK(p.used == in.size());
    CHECK(p.head.method_view() == "GET");
    CHECK(p.head.target_view() == "/a/b?x=1&y=%20");
    CHECK(p.head.version == 11);
    CHECK(p.head.keep_alive);
    CHECK_FALSE(p.head.expect_continue);
    CHECK_FALSE(p.head.head_request);
    CHECK_FALSE(p.parser.chunked_request());
    CHECK_FALSE(p.parser.content_length().has_value());

    const std::vector<std::pair<std::string, std::string>> expected = {
        {"host", "example.com"}, {"x-custom", "Mixed Case Value"},
        {"accept", "*/*"},       {"x-custom", "second"},
        {"empty", ""},           {"spaced", "inner  value"},
    };
    CHECK(p.fields() == expected);
}

TEST_CASE("request_parser: methods and targets are kept as sent", "[request_parser]") {
    Parse head(request("HEAD /h HTTP/1.1", "Host: h\r\n"));
    REQUIRE(head.ok());
    CHECK(head.head.method_view() == "HEAD");
    CHECK(head.head.head_request);

    Parse custom(request("PURGE /cache/item HTTP/1.1", "Host: h\r\n"));
    REQUIRE(custom.ok());
    CHECK(custom.head.method_view() == "PURGE");
    CHECK_FALSE(custom.head.head_request);

    Parse options(request("OPTIONS * HTTP/1.1", "Host: h\r\n"));
    REQUIRE(options.ok());
    CHECK(options.head.target_view() == "*");

    Parse absolute(request("GET http://example.com:8080/p?q HTTP/1.1", "Host: example.com\r\n"));
    REQUIRE(absolute.ok());
    CHECK(absolute.head.target_view() == "http://example.com:8080/p?q");
}

TEST_CASE("request_parser: put stops at the end of the head", "[request_parser]") {
    const std::string head_bytes =
        request("POST /upload HTTP/1.1", "Host: h\r\nContent-Length: 5\r\n");
    Parse p(head_bytes + "hello");
    REQUIRE(p.ok());
    CHECK(p.used == head_bytes.size());
    CHECK(p.parser.content_length() == boost::optional<std::uint64_t>(5));
}

TEST_CASE("request_parser: keep_alive", "[request_parser]") {
    struct Case {
        const char* version;
        const char* connection;  // nullptr: no Connection header
        bool keep_alive;
    };
    const Case cases[] = {
        {"HTTP/1.1", nullptr, true},           {"HTTP/1.1", "keep-alive", true},
        {"HTTP/1.1", "close", false},          {"HTTP/1.1", "Close", false},
        {"HTTP/1.1", "upgrade, close", false}, {"HTTP/1.1", "x-other", true},
        {"HTTP/1.0", nullptr, false},          {"HTTP/1.0", "keep-alive", true},
        {"HTTP/1.0", "Keep-Alive", true},      {"HTTP/1.0", "close", false},
    };
    for (const Case& c : cases) {
        INFO(c.version << " Connection: " << (c.connection ? c.connection : "(none)"));
        std::string fields = "Host: h\r\n";
        if (c.connection)
            fields += "Connection: "s + c.connection + "\r\n";
        Parse p(request("GET / "s + c.version, fields));
        REQUIRE(p.ok());
        CHECK(p.head.version == (std::string_view(c.version) == "HTTP/1.1" ? 11 : 10));
        CHECK(p.head.keep_alive == c.keep_alive);
    }
}

TEST_CASE("request_parser: Expect: 100-continue", "[request_parser]") {
    CHECK(Parse(get11("Expect: 100-continue\r\n")).head.expect_continue);
    CHECK(Parse(get11("Expect: 100-Continue\r\n")).head.expect_continue);
    CHECK_FALSE(Parse(get11("Expect: something-else\r\n")).head.expect_continue);
    CHECK_FALSE(Parse(get11("")).head.expect_continue);
    // The field is still passed on to the app.
    Parse p(get11("Expect: 100-continue\r\n"));
    REQUIRE(p.ok());
    CHECK(p.fields().back() == std::pair<std::string, std::string>{"expect", "100-continue"});
}

TEST_CASE("request_parser: Host", "[request_parser]") {
    SECTION("missing on HTTP/1.1 is 400") {
        require_refused(request("GET / HTTP/1.1", "X: y\r\n"), 400, "missing Host");
    }
    SECTION("repeated is 400") {
        require_refused(request("GET / HTTP/1.1", "Host: a\r\nHost: b\r\n"), 400, "repeated Host");
        require_refused(request("GET / HTTP/1.1", "Host: a\r\nhost: a\r\n"), 400, "repeated Host");
    }
    SECTION("HTTP/1.0 without Host is fine") {
        Parse p(request("GET / HTTP/1.0", ""));
        CHECK(p.ok());
        CHECK(p.head.version == 10);
        CHECK(p.head.fields().empty());
    }
    SECTION("an empty Host on HTTP/1.1 counts as present") {
        CHECK(Parse(request("GET / HTTP/1.1", "Host:\r\n")).ok());
    }
}

TEST_CASE("request_parser: Content-Length", "[request_parser]") {
    SECTION("a single valid value") {
        Parse p(get11("Content-Length: 42\r\n"));
        REQUIRE(p.ok());
        CHECK(p.parser.content_length() == boost::optional<std::uint64_t>(42));
        CHECK_FALSE(p.parser.chunked_request());
        CHECK(p.fields().back() == std::pair<std::string, std::string>{"content-length", "42"});
    }
    SECTION("zero") {
        Parse p(get11("Content-Length: 0\r\n"));
        REQUIRE(p.ok());
        CHECK(p.parser.content_length() == boost::optional<std::uint64_t>(0));
    }
    SECTION("repeated, even with the same value, is 400") {
        require_refused(get11("Content-Length: 5\r\nContent-Length: 5\r\n"), 400,
                        "repeated Content-Length");
    }
    SECTION("a list of equal values (which Beast accepts) is 400") {
        require_refused(get11("Content-Length: 5, 5\r\n"), 400, "invalid Content-Length");
        require_refused(get11("Content-Length: 5,5\r\n"), 400, "invalid Content-Length");
    }
    SECTION("non-digit values are 400 (refused by Beast first)") {
        require_refused_by_beast(get11("Content-Length: abc\r\n"),
                                 bhttp::error::bad_content_length);
        require_refused_by_beast(get11("Content-Length: -1\r\n"), bhttp::error::bad_content_length);
        require_refused_by_beast(get11("Content-Length: +5\r\n"), bhttp::error::bad_content_length);
        require_refused_by_beast(get11("Content-Length: 5a\r\n"), bhttp::error::bad_content_length);
        require_refused_by_beast(get11("Content-Length: 0x10\r\n"),
                                 bhttp::error::bad_content_length);
        require_refused_by_beast(get11("Content-Length:\r\n"), bhttp::error::bad_content_length);
    }
    SECTION("conflicting values are 400 (refused by Beast first)") {
        require_refused_by_beast(get11("Content-Length: 5\r\nContent-Length: 6\r\n"),
                                 conflicting_content_length_error());
    }
    SECTION("above body_limit is Beast's body_limit error (413)") {
        Parse over(get11("Content-Length: 101\r\n"), 100);
        CHECK(over.ec == bhttp::error::body_limit);
        CHECK(over.parser.error_status() == 0);
        CHECK(over.answered_status() == 413);

        Parse at(get11("Content-Length: 100\r\n"), 100);
        CHECK(at.ok());
        CHECK(at.parser.content_length() == boost::optional<std::uint64_t>(100));
    }
}

TEST_CASE("request_parser: Transfer-Encoding", "[request_parser]") {
    SECTION("chunked alone is accepted") {
        for (const char* te : {"chunked", "Chunked", "CHUNKED"}) {
            INFO(te);
            Parse p(get11("Transfer-Encoding: "s + te + "\r\n"));
            REQUIRE(p.ok());
            CHECK(p.parser.chunked_request());
            CHECK_FALSE(p.parser.content_length().has_value());
        }
    }
    SECTION("other codings are 501") {
        require_refused(get11("Transfer-Encoding: gzip\r\n"), 501, "unsupported Transfer-Encoding");
        require_refused(get11("Transfer-Encoding: gzip, chunked\r\n"), 501,
                        "unsupported Transfer-Encoding");
        require_refused(get11("Transfer-Encoding: chunked, gzip\r\n"), 501,
                        "unsupported Transfer-Encoding");
        require_refused(get11("Transfer-Encoding: identity\r\n"), 501,
                        "unsupported Transfer-Encoding");
    }
    SECTION("chunked twice in one field is 400") {
        require_refused(get11("Transfer-Encoding: chunked, chunked\r\n"), 400,
                        "malformed Transfer-Encoding");
    }
    SECTION("a list with an empty element is 400") {
        Parse p(get11("Transfer-Encoding: ,chunked\r\n"));
        CHECK(p.ec);
        CHECK(p.answered_status() == 400);
        CHECK_FALSE(p.parser.chunked_request());
    }
    SECTION("two Transfer-Encoding fields are 400") {
        // Beast refuses the second one itself (its duplicate check runs first), so our
        // own "repeated Transfer-Encoding" check is not what answers.
        Parse p(get11("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"));
        CHECK(p.ec);
        CHECK(p.answered_status() == 400);
    }
    SECTION("with Content-Length, in either order, is 400") {
        require_refused_by_beast(get11("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"),
                                 bhttp::error::bad_transfer_encoding);
        require_refused_by_beast(get11("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"),
                                 bhttp::error::bad_content_length);
    }
}

TEST_CASE("request_parser: a refused field is not added to the head", "[request_parser]") {
    Parse p(get11("X-Before: 1\r\nContent-Length: 5\r\nContent-Length: 5\r\nX-After: 2\r\n"));
    REQUIRE(p.parser.error_status() == 400);
    const std::vector<std::pair<std::string, std::string>> expected = {
        {"host", "h"}, {"x-before", "1"}, {"content-length", "5"}};
    CHECK(p.fields() == expected);
}

// RFC 9112 6.1: an HTTP/1.0 message with Transfer-Encoding is treated as having faulty
// framing: served, then the connection is closed.
TEST_CASE("request_parser: HTTP/1.0 with Transfer-Encoding is not kept alive", "[request_parser]") {
    Parse p(request("POST / HTTP/1.0", "Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n"));
    CHECK((p.ec || !p.head.keep_alive));
}
