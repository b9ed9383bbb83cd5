#include "server/http/head_reader.hpp"

#include "catch.hpp"

#include <cstdint>
#include <string>
#include <string_view>

using namespace std::string_literals;
using narwhal::server::http::BodyReader;
using narwhal::server::http::HeadLimits;
using narwhal::server::http::HeadRead;
using narwhal::server::http::read_request_head;
using Outcome = HeadRead::Outcome;

namespace {
constexpr uint64_t body_limit = 1 << 20;

// The head read, and the body reader it set up.
struct Read : HeadRead {
    BodyReader body;
};

Read read(std::string_view in, uint64_t limit = body_limit) {
    Read r;
    static_cast<HeadRead&>(r) = read_request_head(in, HeadLimits{}, limit, r.body);
    return r;
}

// All the body the reader gives out of `in` with plenty of credit.
std::string body_of(Read& r, std::string_view in, BodyReader::Status* status = nullptr) {
    std::size_t credit = 1 << 20;
    std::size_t used = 0;
    std::string out;
    auto st = r.body.feed(in, credit, out, used);
    if (status)
        *status = st;
    return out;
}

const std::string ws_upgrade = "GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
                               "Connection: Upgrade\r\n"
                               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
}  // namespace

TEST_CASE("head_reader: a complete GET", "[head_reader]") {
    const std::string in = "GET /p?q=1 HTTP/1.1\r\nHost: a\r\nX-Y: z\r\n\r\n";
    Read r = read(in);
    REQUIRE(r.outcome == Outcome::request);
    CHECK(r.consumed == in.size());
    REQUIRE(r.head);
    CHECK(r.head->method_view() == "GET");
    CHECK(r.head->target_view() == "/p?q=1");
    CHECK(r.head->version == 11);
    CHECK(r.head->keep_alive);
    CHECK_FALSE(r.head->head_request);
    CHECK(r.head->fields().size() == 2);
    CHECK(r.body.done());  // no body
}

TEST_CASE("head_reader: incomplete heads wait and consume nothing", "[head_reader]") {
    for (std::string_view in : {"G"s, "GET / HTTP/1.1\r\n"s, "GET / HTTP/1.1\r\nHost: a\r\n"s,
                                "GET / HTTP/1.1\r\nHost: a\r\n\r"s}) {
        Read r = read(in);
        CHECK(r.outcome == Outcome::incomplete);
        CHECK(r.consumed == 0);
        CHECK_FALSE(r.head);
    }
}

TEST_CASE("head_reader: leading empty lines are consumed, pipelined bytes are not",
          "[head_reader]") {
    const std::string first = "\r\n\r\nHEAD /1 HTTP/1.1\r\nHost: a\r\n\r\n";
    const std::string in = first + "GET /2 HTTP/1.1\r\nHost: a\r\n\r\n";
    Read r = read(in);
    REQUIRE(r.outcome == Outcome::request);
    CHECK(r.consumed == first.size());
    CHECK(r.head->target_view() == "/1");
    CHECK(r.head->head_request);
}

TEST_CASE("head_reader: body framing", "[head_reader]") {
    SECTION("Content-Length") {
        const std::string head = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n";
        Read r = read(head + "hello" + "GET");
        REQUIRE(r.outcome == Outcome::request);
        CHECK(r.consumed == head.size());
        CHECK_FALSE(r.body.done());
        BodyReader::Status st;
        CHECK(body_of(r, "helloGET", &st) == "hello");
        CHECK(st == BodyReader::Status::done);
    }
    SECTION("Content-Length: 0 is no body") {
        Read r = read("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
        REQUIRE(r.outcome == Outcome::request);
        CHECK(r.body.done());
    }
    SECTION("chunked") {
        Read r = read("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
        REQUIRE(r.outcome == Outcome::request);
        CHECK_FALSE(r.body.done());
        BodyReader::Status st;
        CHECK(body_of(r, "3\r\nabc\r\n0\r\n\r\n", &st) == "abc");
        CHECK(st == BodyReader::Status::done);
    }
    SECTION("a chunked body over the limit is found by the body reader") {
        Read r = read("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", 2);
        REQUIRE(r.outcome == Outcome::request);
        BodyReader::Status st;
        body_of(r, "3\r\nabc\r\n0\r\n\r\n", &st);
        CHECK(st == BodyReader::Status::too_large);
    }
}

TEST_CASE("head_reader: invalid requests get their status", "[head_reader]") {
    struct Case {
        std::string in;
        int status;
    };
    const Case cases[] = {
        {"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400},          // scanner
        {"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},                     // scanner
        {"GET /" + std::string(9000, 'a') + " HTTP/1.1\r\n\r\n", 414},  // scanner
        {"GET / HTTP/1.1\r\n\r\n", 400},                                // parser: no Host
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3000000\r\n\r\n", 413},  // body limit
        {ws_upgrade + "\r\n", 426},  // no Sec-WebSocket-Version
        {"POST /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n", 405},
    };
    for (const Case& c : cases) {
        INFO(c.in.substr(0, 80));
        Read r = read(c.in);
        CHECK(r.outcome == Outcome::invalid);
        CHECK(r.status == c.status);
        CHECK(std::string_view(r.reason).size() > 0);
        CHECK_FALSE(r.head);
    }
}

TEST_CASE("head_reader: with WebSocket off an upgrade is a plain request", "[head_reader]") {
    // --ws none: uvicorn without a WebSocket implementation serves these as HTTP.
    for (std::string in : {ws_upgrade + "Sec-WebSocket-Version: 13\r\n\r\n",
                           ws_upgrade + "\r\n",  // would be 426 with WebSocket on
                           std::string("POST /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
                                       "Content-Length: 2\r\n\r\nhi")}) {
        INFO(in);
        Read r;
        static_cast<HeadRead&>(r) = read_request_head(in, HeadLimits{}, body_limit, r.body, false);
        REQUIRE(r.outcome == Outcome::request);
        REQUIRE(r.head);
        CHECK_FALSE(r.head->websocket);
        CHECK(r.head->target_view() == "/chat");
    }
}

TEST_CASE("head_reader: a valid WebSocket upgrade", "[head_reader]") {
    const std::string in = ws_upgrade + "Sec-WebSocket-Version: 13\r\n\r\n";
    Read r = read(in);
    REQUIRE(r.outcome == Outcome::websocket);
    CHECK(r.consumed == in.size());
    REQUIRE(r.head);
    CHECK(r.head->target_view() == "/chat");
}
