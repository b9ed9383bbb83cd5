#include "server/http/response_encoder.hpp"

#include "catch.hpp"

#include <string>

using narwhal::asgi::HeaderFacts;
using narwhal::server::http::HeaderList;
using narwhal::server::http::ResponseDefaults;
using narwhal::server::http::ResponseEncoder;

namespace {
using Side = ResponseEncoder::RequestSide;

ResponseDefaults bare() {
    ResponseDefaults d;
    d.server_header = false;
    d.date_header = false;
    return d;
}

HeaderFacts decided(std::optional<uint64_t> length = {}, bool connection = false,
                    bool close = false) {
    return {.close = close, .connection = connection, .content_length = length};
}

// The whole response for one start and the given body messages, as the session builds it.
std::string respond(ResponseEncoder& enc, const Side& side,
                    std::initializer_list<std::string> parts, std::size_t* app_bytes = nullptr) {
    std::string out;
    std::size_t counted = 0;
    std::size_t left = parts.size();
    for (const std::string& part : parts) {
        bool more = --left > 0;
        if (!enc.head_written())
            enc.append_head(out, side, part.size(), more, bare());
        counted += enc.append_body(out, std::string(part), more);
    }
    if (app_bytes)
        *app_bytes = counted;
    return out;
}
}  // namespace

TEST_CASE("response_encoder: one body message leaves with its length", "[response_encoder]") {
    ResponseEncoder enc;
    CHECK_FALSE(enc.started());
    enc.start(200, {{"content-type", "text/plain"}}, decided());
    CHECK(enc.started());
    CHECK_FALSE(enc.head_written());
    std::size_t counted = 0;
    CHECK(respond(enc, {}, {"hello"}, &counted) ==
          "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\nhello");
    CHECK(counted == 5);
    CHECK(enc.head_written());
    CHECK(enc.done());
    CHECK(enc.keep_alive());
    CHECK(enc.status() == 200);
}

TEST_CASE("response_encoder: a streamed body is chunked", "[response_encoder]") {
    ResponseEncoder enc;
    enc.start(200, {}, decided());
    std::string out;
    enc.append_head(out, {}, 0, true, bare());  // a start alone
    CHECK(out == "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n");
    std::string part;
    CHECK(enc.append_body(part, std::string(26, 'x'), true) == 26);
    CHECK(part == "1a\r\n" + std::string(26, 'x') + "\r\n");
    part.clear();
    CHECK(enc.append_body(part, "", true) == 0);  // an empty part writes no chunk: no early end
    CHECK(part.empty());
    CHECK_FALSE(enc.done());
    CHECK(enc.append_body(part, "end", false) == 3);
    CHECK(part == "3\r\nend\r\n0\r\n\r\n");
    CHECK(enc.done());
    CHECK(enc.keep_alive());
}

TEST_CASE("response_encoder: a streamed part on its own is moved, not copied",
          "[response_encoder]") {
    ResponseEncoder enc;
    enc.start(200, {{"content-length", "6"}}, decided(6));
    std::string out;
    enc.append_head(out, {}, 0, true, bare());
    CHECK(out == "HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\n");  // the app's length only
    std::string body(1000, 'y');
    body.resize(3);
    const char* storage = body.data();
    std::string piece;
    CHECK(enc.append_body(piece, std::move(body), true) == 3);
    CHECK(piece.data() == storage);
    piece.clear();
    enc.append_body(piece, "abc", false);
    CHECK(piece == "abc");
}

TEST_CASE("response_encoder: HEAD gets the head only", "[response_encoder]") {
    ResponseEncoder enc;
    enc.start(200, {}, decided());
    std::size_t counted = 99;
    CHECK(respond(enc, {.head_request = true}, {"hello"}, &counted) ==
          "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n");
    CHECK(counted == 0);  // nothing of the body goes out
    CHECK(enc.done());
}

TEST_CASE("response_encoder: 204 and 304 carry no body", "[response_encoder]") {
    for (int status : {204, 304}) {
        ResponseEncoder enc;
        enc.start(status, {}, decided());
        std::size_t counted = 99;
        std::string out = respond(enc, {}, {"dropped"}, &counted);
        CHECK(out.find("dropped") == std::string::npos);
        CHECK(out.find("content-length") == std::string::npos);
        CHECK(out.find("transfer-encoding") == std::string::npos);
        CHECK(counted == 0);
    }
}

TEST_CASE("response_encoder: HTTP/1.0 streaming is close-delimited", "[response_encoder]") {
    ResponseEncoder enc;
    enc.start(200, {}, decided());
    CHECK(respond(enc, {.version = 10}, {"ab", "cd"}) ==
          "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nabcd");
    CHECK_FALSE(enc.keep_alive());
}

TEST_CASE("response_encoder: HTTP/1.0 keep-alive with one body says keep-alive",
          "[response_encoder]") {
    ResponseEncoder enc;
    enc.start(200, {}, decided());
    CHECK(respond(enc, {.version = 10}, {"ab"}) ==
          "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: keep-alive\r\n\r\nab");
    CHECK(enc.keep_alive());
}

TEST_CASE("response_encoder: closing", "[response_encoder]") {
    SECTION("the app's connection: close is honoured and its header stands alone") {
        ResponseEncoder enc;
        enc.start(200, {{"connection", "close"}}, decided({}, true, true));
        CHECK(respond(enc, {}, {"x"}) ==
              "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 1\r\n\r\nx");
        CHECK_FALSE(enc.keep_alive());
    }
    SECTION("the app's other connection header stands; the server adds none") {
        ResponseEncoder enc;
        enc.start(200, {{"connection", "keep-alive"}}, decided({}, true, false));
        CHECK(respond(enc, {}, {"x"}) ==
              "HTTP/1.1 200 OK\r\nconnection: keep-alive\r\ncontent-length: 1\r\n\r\nx");
        CHECK(enc.keep_alive());
    }
    SECTION("draining or an unread request body close with connection: close") {
        for (Side side :
             {Side{.draining = true}, Side{.body_done = false}, Side{.keep_alive = false}}) {
            ResponseEncoder enc;
            enc.start(200, {}, decided());
            CHECK(respond(enc, side, {"x"}) ==
                  "HTTP/1.1 200 OK\r\ncontent-length: 1\r\nconnection: close\r\n\r\nx");
            CHECK_FALSE(enc.keep_alive());
        }
    }
}

TEST_CASE("response_encoder: decided facts are trusted, not re-read", "[response_encoder]") {
    // The boundary decided: no length, no close. A header list that says otherwise is
    // not parsed again (it cannot, after ResponseHeaders; this proves nobody looks).
    ResponseEncoder enc;
    enc.start(200, {{"x-note", "connection: close"}}, decided());
    std::string out = respond(enc, {}, {"ab", "cd"});
    CHECK(out.find("transfer-encoding: chunked") != std::string::npos);
    CHECK(enc.keep_alive());
}

TEST_CASE("response_encoder: = {} starts the next response fresh", "[response_encoder]") {
    ResponseEncoder enc;
    enc.start(404, {{"x", "y"}}, decided({}, true, true));
    respond(enc, {}, {"gone"});
    enc = {};
    CHECK_FALSE(enc.started());
    CHECK_FALSE(enc.head_written());
    CHECK_FALSE(enc.done());
    enc.start(200, {}, decided());
    CHECK(respond(enc, {}, {"ok"}) == "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    CHECK(enc.keep_alive());
}

TEST_CASE("response_encoder: a file body is framed around the file's bytes", "[response_encoder]") {
    SECTION("with the head: its length, nothing before or after the file") {
        ResponseEncoder enc;
        enc.start(200, {}, decided());
        std::string out;
        enc.append_head(out, Side{}, 1000, false, bare(), false);
        CHECK(out == "HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n");
        CHECK(out.capacity() < 1000);  // the file's bytes never pass through `out`
        out.clear();
        CHECK(enc.begin_file(out, 1000));
        CHECK(out.empty());
        enc.end_file(out, 1000);
        CHECK(out.empty());
        CHECK(enc.done());
    }
    SECTION("after a start sent alone: one chunk") {
        ResponseEncoder enc;
        enc.start(200, {}, decided());
        std::string out;
        enc.append_head(out, Side{}, 0, true, bare());
        out.clear();
        CHECK(enc.begin_file(out, 1000));
        CHECK(out == "3e8\r\n");
        out.clear();
        enc.end_file(out, 1000);
        CHECK(out == "\r\n0\r\n\r\n");
        CHECK(enc.done());
    }
    SECTION("HEAD: no file bytes") {
        ResponseEncoder enc;
        enc.start(200, {}, decided());
        std::string out;
        enc.append_head(out, Side{.head_request = true}, 1000, false, bare(), false);
        CHECK(out == "HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n");
        out.clear();
        CHECK_FALSE(enc.begin_file(out, 1000));
        enc.end_file(out, 0);
        CHECK(out.empty());
        CHECK(enc.done());
    }
}
