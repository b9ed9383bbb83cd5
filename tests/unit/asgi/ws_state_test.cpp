#include "asgi/ws_state.hpp"

#include "catch.hpp"

#include <string>

using narwhal::asgi::WebSocketState;
using Phase = WebSocketState::Phase;

TEST_CASE("ws_state: accept, send, close", "[ws_state]") {
    WebSocketState s;
    CHECK(s.phase() == Phase::connecting);
    CHECK_FALSE(s.on_send("websocket.accept"));
    CHECK(s.phase() == Phase::open);
    CHECK_FALSE(s.on_send("websocket.send"));
    CHECK_FALSE(s.on_send("websocket.send"));
    CHECK_FALSE(s.on_send("websocket.close"));
    CHECK(s.phase() == Phase::closed);
    auto err = s.on_send("websocket.send");
    REQUIRE(err);
    CHECK(*err == "Unexpected ASGI message 'websocket.send', after sending 'websocket.close' or "
                  "response already completed.");
}

TEST_CASE("ws_state: close before accept is allowed (the server answers 403)", "[ws_state]") {
    WebSocketState s;
    CHECK_FALSE(s.on_send("websocket.close"));
    CHECK(s.phase() == Phase::closed);
}

TEST_CASE("ws_state: send before accept is refused with uvicorn's wording", "[ws_state]") {
    WebSocketState s;
    auto err = s.on_send("websocket.send");
    REQUIRE(err);
    CHECK(*err == "Expected ASGI message 'websocket.accept', 'websocket.close', or "
                  "'websocket.http.response.start' but got 'websocket.send'.");
    CHECK(s.phase() == Phase::connecting);  // an error changes nothing
}

TEST_CASE("ws_state: denial response: start, body parts, then nothing", "[ws_state]") {
    WebSocketState s;
    CHECK_FALSE(s.on_send("websocket.http.response.start"));
    CHECK(s.phase() == Phase::connecting);  // not before the start's contents are checked
    CHECK_FALSE(s.on_denial_start(401, std::nullopt));
    CHECK(s.phase() == Phase::denial);
    auto err = s.on_send("websocket.accept");
    REQUIRE(err);
    CHECK(*err ==
          "Expected ASGI message 'websocket.http.response.body' but got 'websocket.accept'.");
    err = s.on_send("websocket.http.response.start");
    REQUIRE(err);
    CHECK(*err == "Expected ASGI message 'websocket.http.response.body' but got "
                  "'websocket.http.response.start'.");
    CHECK_FALSE(s.on_send("websocket.http.response.body"));
    CHECK_FALSE(s.on_denial_body(3, true));
    CHECK(s.phase() == Phase::denial);
    CHECK_FALSE(s.on_send("websocket.http.response.body"));
    CHECK_FALSE(s.on_denial_body(4, false));
    CHECK(s.phase() == Phase::closed);
    CHECK(s.denial().status() == 401);
    CHECK(s.denial().body_bytes() == 7);
}

TEST_CASE("ws_state: the denial status is a final HTTP status", "[ws_state]") {
    for (int status : {0, 99, 100, 101, 199, 600, 700, 999}) {
        INFO(status);
        WebSocketState s;
        auto err = s.on_denial_start(status, std::nullopt);
        REQUIRE(err);
        CHECK(*err == "Invalid HTTP status code '" + std::to_string(status) + "' in response.");
        CHECK(s.phase() == Phase::connecting);  // an error changes nothing
    }
    for (int status : {200, 204, 403, 599}) {
        WebSocketState s;
        CHECK_FALSE(s.on_denial_start(status, std::nullopt));
    }
}

TEST_CASE("ws_state: the denial body is held to its Content-Length", "[ws_state]") {
    SECTION("longer") {
        WebSocketState s;
        REQUIRE_FALSE(s.on_denial_start(403, 4));
        CHECK_FALSE(s.on_denial_body(3, true));
        auto err = s.on_denial_body(2, false);
        REQUIRE(err);
        CHECK(*err == "Response content longer than Content-Length");
        CHECK(s.phase() == Phase::denial);  // still unanswered: the server answers 500
    }
    SECTION("shorter") {
        WebSocketState s;
        REQUIRE_FALSE(s.on_denial_start(403, 4));
        auto err = s.on_denial_body(3, false);
        REQUIRE(err);
        CHECK(*err == "Response content shorter than Content-Length");
        CHECK(s.phase() == Phase::denial);
    }
    SECTION("exact") {
        WebSocketState s;
        REQUIRE_FALSE(s.on_denial_start(403, 4));
        CHECK_FALSE(s.on_denial_body(4, false));
        CHECK(s.phase() == Phase::closed);
    }
}

TEST_CASE("ws_state: after accept only send and close", "[ws_state]") {
    WebSocketState s;
    REQUIRE_FALSE(s.on_send("websocket.accept"));
    auto err = s.on_send("websocket.accept");
    REQUIRE(err);
    CHECK(
        *err ==
        "Expected ASGI message 'websocket.send' or 'websocket.close', but got 'websocket.accept'.");
    s.on_closed();
    CHECK(s.phase() == Phase::closed);
    CHECK(s.on_send("websocket.close"));
}
