#include "asgi/ws_state.hpp"

#include "catch.hpp"

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
    CHECK(s.phase() == Phase::denial);
    auto err = s.on_send("websocket.accept");
    REQUIRE(err);
    CHECK(*err ==
          "Expected ASGI message 'websocket.http.response.body' but got 'websocket.accept'.");
    CHECK_FALSE(s.on_send("websocket.http.response.body", true));
    CHECK(s.phase() == Phase::denial);
    CHECK_FALSE(s.on_send("websocket.http.response.body", false));
    CHECK(s.phase() == Phase::closed);
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
