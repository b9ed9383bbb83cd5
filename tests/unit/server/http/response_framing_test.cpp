#include "server/http/response_framing.hpp"

#include "catch.hpp"

#include <cstdint>
#include <optional>

using narwhal::server::http::decide_framing;
using narwhal::server::http::Framing;
using narwhal::server::http::FramingDecision;
using narwhal::server::http::FramingInput;

namespace {
// A plain HTTP/1.1 GET whose response is one body message of 5 bytes.
FramingInput get11() {
    FramingInput in;
    in.status = 200;
    in.first_body_size = 5;
    in.more_body = false;
    in.version = 11;
    return in;
}
}  // namespace

TEST_CASE("response_framing: one body message gets content-length, kept alive",
          "[response_framing]") {
    FramingDecision d = decide_framing(get11());
    CHECK(d.framing == Framing::content_length);
    CHECK(d.content_length == 5);
    CHECK(d.add_length_header);
    CHECK(d.body_allowed);
    CHECK(d.keep_alive);

    FramingInput empty = get11();
    empty.first_body_size = 0;
    d = decide_framing(empty);
    CHECK(d.framing == Framing::content_length);
    CHECK(d.content_length == 0);
    CHECK(d.add_length_header);
}

TEST_CASE("response_framing: the app's Content-Length stands", "[response_framing]") {
    FramingInput in = get11();
    in.app_length = 1000;
    in.more_body = true;  // streamed, but declared
    FramingDecision d = decide_framing(in);
    CHECK(d.framing == Framing::content_length);
    CHECK(d.content_length == 1000);
    CHECK_FALSE(d.add_length_header);
    CHECK(d.keep_alive);

    in.more_body = false;  // one message: the declared length still wins over its size
    in.first_body_size = 1000;
    d = decide_framing(in);
    CHECK(d.framing == Framing::content_length);
    CHECK_FALSE(d.add_length_header);
}

TEST_CASE("response_framing: a streamed body is chunked on HTTP/1.1", "[response_framing]") {
    FramingInput in = get11();
    in.more_body = true;
    in.first_body_size = 0;  // a start on its own
    FramingDecision d = decide_framing(in);
    CHECK(d.framing == Framing::chunked);
    CHECK_FALSE(d.add_length_header);
    CHECK(d.body_allowed);
    CHECK(d.keep_alive);
}

TEST_CASE("response_framing: a streamed body on HTTP/1.0 is delimited by the close",
          "[response_framing]") {
    FramingInput in = get11();
    in.version = 10;
    in.more_body = true;
    FramingDecision d = decide_framing(in);
    CHECK(d.framing == Framing::none);
    CHECK(d.body_allowed);
    CHECK_FALSE(d.keep_alive);

    in.more_body = false;  // a single body is counted, and HTTP/1.0 keep-alive survives
    d = decide_framing(in);
    CHECK(d.framing == Framing::content_length);
    CHECK(d.keep_alive);

    in.request_keep_alive = false;  // an HTTP/1.0 request without keep-alive
    CHECK_FALSE(decide_framing(in).keep_alive);
}

TEST_CASE("response_framing: statuses without content", "[response_framing]") {
    for (int status : {100, 101, 199, 204, 304}) {
        INFO("status " << status);
        FramingInput in = get11();
        in.status = status;
        in.app_length = 7;  // declared or not: no content goes out
        FramingDecision d = decide_framing(in);
        CHECK(d.framing == Framing::none);
        CHECK_FALSE(d.body_allowed);
        CHECK_FALSE(d.add_length_header);
        CHECK(d.keep_alive);
        in.app_length.reset();
        in.more_body = true;
        d = decide_framing(in);
        CHECK(d.framing == Framing::none);
        CHECK(d.keep_alive);
    }
    for (int status : {200, 205, 299, 303, 305, 404, 500, 999}) {
        INFO("status " << status);
        FramingInput in = get11();
        in.status = status;
        CHECK(decide_framing(in).body_allowed);
    }
}

TEST_CASE("response_framing: HEAD", "[response_framing]") {
    FramingInput in = get11();
    in.head_request = true;

    SECTION("one body message: the length a GET would have, no body") {
        FramingDecision d = decide_framing(in);
        CHECK(d.framing == Framing::content_length);
        CHECK(d.content_length == 5);
        CHECK(d.add_length_header);
        CHECK_FALSE(d.body_allowed);
        CHECK(d.keep_alive);
    }
    SECTION("declared length") {
        in.app_length = 12;
        in.more_body = true;
        FramingDecision d = decide_framing(in);
        CHECK(d.framing == Framing::content_length);
        CHECK_FALSE(d.add_length_header);
        CHECK_FALSE(d.body_allowed);
    }
    SECTION("streamed: no framing, and the connection survives, also on HTTP/1.0") {
        in.more_body = true;
        FramingDecision d = decide_framing(in);
        CHECK(d.framing == Framing::none);
        CHECK_FALSE(d.body_allowed);
        CHECK(d.keep_alive);
        in.version = 10;
        d = decide_framing(in);
        CHECK(d.framing == Framing::none);
        CHECK(d.keep_alive);
    }
}

TEST_CASE("response_framing: what closes the connection", "[response_framing]") {
    SECTION("nothing: kept alive") { CHECK(decide_framing(get11()).keep_alive); }
    SECTION("the request did not allow another") {
        FramingInput in = get11();
        in.request_keep_alive = false;
        CHECK_FALSE(decide_framing(in).keep_alive);
    }
    SECTION("the request body was not read to its end") {
        FramingInput in = get11();
        in.request_body_done = false;
        FramingDecision d = decide_framing(in);
        CHECK_FALSE(d.keep_alive);
        CHECK(d.framing == Framing::content_length);  // framing is unaffected
    }
    SECTION("the server is draining") {
        FramingInput in = get11();
        in.draining = true;
        CHECK_FALSE(decide_framing(in).keep_alive);
    }
    SECTION("the app asked for connection: close") {
        FramingInput in = get11();
        in.app_close = true;
        FramingDecision d = decide_framing(in);
        CHECK_FALSE(d.keep_alive);
        CHECK(d.framing == Framing::content_length);
        in.more_body = true;
        d = decide_framing(in);
        CHECK_FALSE(d.keep_alive);
        CHECK(d.framing == Framing::chunked);  // still framed: the client knows the end
    }
}

TEST_CASE("response_framing: large lengths pass through", "[response_framing]") {
    FramingInput in = get11();
    in.app_length = UINT64_MAX;
    CHECK(decide_framing(in).content_length == UINT64_MAX);
}
